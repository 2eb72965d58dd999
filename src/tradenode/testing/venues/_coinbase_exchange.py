"""The local Coinbase Advanced Trade venue's state: REST answers and the events behind them.

One account (one portfolio) trading spot products behind the deterministic
matching simulator (:class:`tradenode.sim.MatchingSimulator`): the simulator
matches, this module speaks Coinbase. Nothing here does I/O: the ASGI layer
(``_coinbase_app``) hands it each request's method, path, query, body, Host
and Authorization header and writes back the :class:`Reply`; the events it
emits (:class:`UserUpdate`, :class:`TickerUpdate`, :class:`BookUpdate`) go
to the WebSocket connections that subscribed.

Faithful to the Advanced Trade REST reference (docs.cdp.coinbase.com, crawl
of 2026-06) and to what Coinbase's SDK (coinbase-advanced-py 1.8.4) and
ccxt 4.5 send and read:

- every private request carries ``Authorization: Bearer <JWT>``, verified
  against the registered public keys with the ``uri`` claim equal to
  ``"<METHOD> <Host header><path>"``; anything wrong is ``401``
  ``Unauthorized`` (plain text, as Coinbase answers). ``/time`` and
  ``/market/*`` are public;
- an order is refused with HTTP 200 and ``success: false`` (Coinbase's
  ``error_response``), never an HTTP error; a ``client_order_id`` already
  used returns the existing order and creates nothing ("If the ID provided
  is not unique, the order will not be created and the order corresponding
  with that ID will be returned instead");
- prices and sizes are strings, times RFC 3339 in UTC.

Order configurations: ``market_market_ioc`` (``base_size`` or
``quote_size``), ``sor_limit_ioc``, ``limit_limit_gtc`` (``post_only``),
``limit_limit_gtd`` (``end_time``), ``limit_limit_fok``,
``stop_limit_stop_limit_gtc``/``_gtd`` (``stop_direction``: STOP_UP
triggers when the last price rises to ``stop_price``, STOP_DOWN when it
falls to it). Statuses: OPEN (also while partly filled), FILLED,
CANCELLED, EXPIRED (a GTD order whose ``end_time`` passed); an IOC or FOK
order that does not fill completely ends CANCELLED (not documented: the
reference only lists the statuses).

Not modelled: preview endpoints, portfolios, futures and perpetuals,
brackets, TWAP, scaled orders, convert, payment methods, candles, the
``market_trades``/``status``/``candles`` channels, the PENDING/QUEUED
statuses (an order is OPEN, or done, when its placement is answered), the
``x-ratelimit-*`` headers, Coinbase's own rate limits (only the
``rate_limit`` knob answers 429), the close of channels idle for 60-90 s,
and the Coinbase App's ``/v2`` API beyond the public currencies and
exchange rates ccxt loads its markets with.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from tradenode.messages._enums import OrderType, Side, TimeInForce
from tradenode.sim import (
    EXPIRED_TIME_REACHED,
    InstrumentSpec,
    MatchingSimulator,
    SimAccepted,
    SimAmended,
    SimCanceled,
    SimConfig,
    SimEvent,
    SimExpired,
    SimFill,
    SimOrder,
    SimOrderStatus,
    SimRejectCode,
    SimRejected,
    SimTriggered,
    SyntheticBook,
)
from tradenode.testing.venues._coinbase_keys import (
    JwtRefused,
    PublicKey,
    load_public_key,
    verify_jwt,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_COINBASE_BALANCES",
    "BookUpdate",
    "CoinbaseExchange",
    "CoinbaseFillInfo",
    "CoinbaseOrderInfo",
    "Json",
    "Reply",
    "TickerUpdate",
    "UserUpdate",
    "VenueEvent",
    "default_coinbase_config",
    "default_coinbase_instruments",
    "endpoint_name",
]

_log = logging.getLogger("tradenode.testing.venues.coinbase")

Json = dict[str, Any]

API_PREFIX = "/api/v3/brokerage"
MAKER_FEE_BPS = Decimal(40)
TAKER_FEE_BPS = Decimal(60)
"""Coinbase's lowest Advanced Trade tier: 0.40 % maker, 0.60 % taker."""

DEFAULT_COINBASE_BALANCES: Mapping[str, Decimal] = {
    "USD": Decimal(1_000_000),
    "BTC": Decimal(10),
    "ETH": Decimal(100),
}

_NOT_APPLICABLE_TIME = "0001-01-01T00:00:00Z"
_FIAT = frozenset({"USD", "EUR", "GBP"})
_EDITABLE = frozenset({"limit_limit_gtc", "stop_limit_stop_limit_gtc"})
"""Coinbase edits GTC orders only (limit and stop-limit here; brackets are not modelled)."""
_CONFIGURATIONS = frozenset(
    {
        "market_market_ioc",
        "sor_limit_ioc",
        "limit_limit_gtc",
        "limit_limit_gtd",
        "limit_limit_fok",
        "stop_limit_stop_limit_gtc",
        "stop_limit_stop_limit_gtd",
    }
)
_DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_BOOK_LEVELS = 5
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


def default_coinbase_instruments() -> tuple[InstrumentSpec, ...]:
    """BTC-USD and ETH-USD with Coinbase's increments (base 1e-8, price 0.01)."""
    return (
        InstrumentSpec(
            symbol="BTC-USD",
            base_asset="BTC",
            quote_asset="USD",
            initial_price=Decimal("50000.00"),
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.00000001"),
            min_quantity=Decimal("0.00000001"),
            min_notional=Decimal("1"),
            spread_bps=Decimal("2"),
            volatility_bps=Decimal("5"),
            level_quantity=Decimal("0.5"),
        ),
        InstrumentSpec(
            symbol="ETH-USD",
            base_asset="ETH",
            quote_asset="USD",
            initial_price=Decimal("3000.00"),
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.00000001"),
            min_quantity=Decimal("0.00000001"),
            min_notional=Decimal("1"),
            spread_bps=Decimal("2"),
            volatility_bps=Decimal("8"),
            level_quantity=Decimal("5"),
        ),
    )


def default_coinbase_config(
    balances: Mapping[str, Decimal] | None = None,
    instruments: Iterable[InstrumentSpec] | None = None,
) -> SimConfig:
    """A spot account (no short selling) at Coinbase's entry fee tier."""
    specs = tuple(default_coinbase_instruments() if instruments is None else instruments)
    return SimConfig(
        instruments=specs,
        balances=dict(DEFAULT_COINBASE_BALANCES if balances is None else balances),
        depth_levels=_BOOK_LEVELS,
        level_spacing_bps=Decimal(5),
        maker_commission_bps=MAKER_FEE_BPS,
        taker_commission_bps=TAKER_FEE_BPS,
        allow_short=False,
    )


# ------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: a JSON document (or text, for the 401) and extra headers."""

    status: int
    body: Json | str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserUpdate:
    """An order changed: its ``user`` channel shape (after the REST state already shows it)."""

    product_id: str
    order: Json


@dataclass(frozen=True, slots=True)
class TickerUpdate:
    product_id: str
    ticker: Json


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """``level2`` changes: ``{side, event_time, price_level, new_quantity}`` rows (0 removes)."""

    product_id: str
    updates: tuple[Json, ...]


VenueEvent = UserUpdate | TickerUpdate | BookUpdate


@dataclass(frozen=True, slots=True)
class CoinbaseOrderInfo:
    """One order as the venue holds it (inspection; Coinbase's own names and statuses)."""

    order_id: str
    client_order_id: str
    product_id: str
    side: str
    order_type: str
    time_in_force: str
    status: str
    size: Decimal
    filled_size: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    average_filled_price: Decimal | None
    number_of_fills: int
    configuration: str
    """The ``order_configuration`` key it was placed with (``limit_limit_gtc``, ...)."""


@dataclass(frozen=True, slots=True)
class CoinbaseFillInfo:
    """One execution; ``trade_id`` is Coinbase's dedup key for fills."""

    trade_id: str
    entry_id: str
    order_id: str
    client_order_id: str
    product_id: str
    side: str
    price: Decimal
    size: Decimal
    commission: Decimal
    liquidity_indicator: str
    trade_time: str


@dataclass(slots=True)
class _Order:
    order_id: str
    client_order_id: str
    venue_order_id: int
    product_id: str
    side: str
    configuration: str
    order_configuration: Json
    order_type: str
    time_in_force: str
    post_only: bool
    end_time: str | None
    stop_direction: str | None
    created_time: str
    expired_by_time: bool = False
    number_of_fills: int = 0
    total_fees: Decimal = _ZERO
    last_fill_time: str | None = None
    edit_history: list[Json] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Fill:
    entry_id: str
    trade_id: str
    order_id: str
    client_order_id: str
    product_id: str
    side: str
    price: Decimal
    size: Decimal
    commission: Decimal
    liquidity_indicator: str
    trade_time: str


class _BadRequest(Exception):
    """A malformed request: HTTP 400 ``INVALID_ARGUMENT`` with the reason."""


@dataclass(frozen=True, slots=True)
class _Placement:
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    post_only: bool = False
    expire_time_ns: int | None = None
    order_type_name: str = "LIMIT"
    time_in_force_name: str = "GOOD_UNTIL_CANCELLED"
    end_time: str | None = None
    stop_direction: str | None = None


# ----------------------------------------------------------------- helpers


def fmt(value: Decimal | None) -> str:
    """Coinbase's decimal strings: plain notation, no exponent, no trailing zeros."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _rfc3339(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_rfc3339(text: str) -> int:
    """Epoch ms of an RFC 3339 time; ``_BadRequest`` if it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise _BadRequest(f"end_time {text!r} is not an RFC 3339 time") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _decimal(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _BadRequest(f"{name} must be a decimal string")
    try:
        number = Decimal(str(value))
    except InvalidOperation as error:
        raise _BadRequest(f"{name} {value!r} is not a number") from error
    if not number.is_finite():
        raise _BadRequest(f"{name} {value!r} is not a number")
    return number


def endpoint_name(method: str, path: str) -> str:
    """How :meth:`CoinbaseVenue.calls` and the request faults name a request.

    ``"POST orders"``, ``"GET orders/historical/batch"``,
    ``"GET orders/historical/{order_id}"``, ``"GET products/{product_id}"``.
    """
    rest = path.removeprefix(API_PREFIX).strip("/")
    parts = rest.split("/")
    if (
        parts[:2] == ["orders", "historical"]
        and len(parts) == 3
        and parts[2]
        not in (
            "batch",
            "fills",
        )
    ):
        rest = "orders/historical/{order_id}"
    elif parts[0] == "accounts" and len(parts) == 2:
        rest = "accounts/{account_uuid}"
    elif parts[0] == "products" and len(parts) >= 2:
        rest = "products/{product_id}" + ("/" + "/".join(parts[2:]) if parts[2:] else "")
    elif parts[:2] == ["market", "products"] and len(parts) >= 3:
        rest = "market/products/{product_id}" + ("/" + "/".join(parts[3:]) if parts[3:] else "")
    return f"{method.upper()} {rest}"


_GRPC_CODES = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "UNAUTHENTICATED": 16}


def _error(status: int, code: str, message: str) -> Reply:
    """A non-2xx answer: Coinbase's default error body (``error``, ``code``, ``message``,
    ``details``) with the ``error_details`` older answers and ccxt's examples carry."""
    body = {
        "error": code,
        "code": _GRPC_CODES.get(code, 2),
        "message": message,
        "error_details": message,
        "details": [],
    }
    return Reply(status, body)


_UNAUTHORIZED = Reply(401, "Unauthorized\n")

_REFUSAL: Mapping[SimRejectCode, tuple[str, str, str]] = {
    # code -> (error, preview_failure_reason or "", new_order_failure_reason or "")
    SimRejectCode.INSUFFICIENT_BALANCE: ("INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND", "INSUFFICIENT_FUND"),
    SimRejectCode.UNKNOWN_SYMBOL: ("INVALID_PRODUCT_ID", "", "INVALID_PRODUCT_ID"),
    SimRejectCode.LOT_SIZE: ("INVALID_SIZE_PRECISION", "PREVIEW_INVALID_SIZE_PRECISION", "INVALID_SIZE_PRECISION"),
    SimRejectCode.TICK_SIZE: ("INVALID_PRICE_PRECISION", "PREVIEW_INVALID_PRICE_PRECISION", "INVALID_PRICE_PRECISION"),
    SimRejectCode.INVALID_PRICE: ("INVALID_PRICE_PRECISION", "PREVIEW_INVALID_LIMIT_PRICE", "INVALID_PRICE_PRECISION"),
    SimRejectCode.INVALID_QUANTITY: ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", ""),
    SimRejectCode.MIN_QUANTITY: ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", ""),
    SimRejectCode.MIN_NOTIONAL: ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL", ""),
    SimRejectCode.WOULD_TAKE: ("INVALID_LIMIT_PRICE_POST_ONLY", "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY", "INVALID_LIMIT_PRICE_POST_ONLY"),
    SimRejectCode.INVALID_EXPIRE_TIME: ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_END_TIME", ""),
}  # fmt: skip


def _split_path(path: str) -> list[str]:
    return [part for part in path.removeprefix(API_PREFIX).split("/") if part]


# -------------------------------------------------------------- exchange


class CoinbaseExchange:
    """The venue's books and its REST API, behind one simulator; not thread-safe by itself.

    It has no lock because it has one owner: REST runs on the server's trio
    thread and the knobs called from other threads are handed to that
    thread too (see ``_coinbase_server``), so nothing here races.

    ``clock`` is epoch milliseconds: the JWT time checks, every timestamp and
    GTD expiry read it.
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        api_keys: Mapping[str, str | bytes],
        seed: int = 0,
        clock: Callable[[], int],
    ) -> None:
        self._clock = clock
        self._sim = MatchingSimulator(config, seed=seed, clock=lambda: self._clock() * 1_000_000)
        self._config = config
        self._specs = {spec.symbol: spec for spec in config.instruments}
        self._books = {symbol: SyntheticBook.for_symbol(config, symbol) for symbol in self._specs}
        self._keys: dict[str, PublicKey] = {}
        for name, pem in api_keys.items():
            self.register_key(name, pem)
        self._ids = random.Random(f"{seed}:coinbase-ids")
        self._user_id = self._new_uuid()
        self._portfolio_id = self._new_uuid()
        self._account_ids = {asset: self._new_uuid() for asset in self._assets()}
        self._orders: dict[str, _Order] = {}
        self._order_list: list[str] = []
        self._by_client: dict[str, str] = {}
        self._by_venue: dict[int, str] = {}
        self._fills: list[_Fill] = []
        self._submissions: dict[str, int] = {}
        self._listeners: list[Callable[[VenueEvent], None]] = []
        self._holding = False
        self._held_moves: list[tuple[str, str | None, Decimal | None]] = []
        self._shown_price: dict[str, Decimal] = {}
        self._shown_book: dict[str, dict[tuple[str, Decimal], Decimal]] = {
            symbol: self._book_levels(symbol) for symbol in self._specs
        }
        self._created_ms = clock()

    def __repr__(self) -> str:
        return f"CoinbaseExchange(products={sorted(self._specs)}, keys={len(self._keys)})"

    # ------------------------------------------------------------- plumbing

    def now(self) -> int:
        return self._clock()

    def add_listener(self, listener: Callable[[VenueEvent], None]) -> None:
        self._listeners.append(listener)

    def _emit(self, event: VenueEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _assets(self) -> list[str]:
        assets = list(self._config.balances)
        for spec in self._config.instruments:
            for asset in (spec.base_asset, spec.quote_asset):
                if asset not in assets:
                    assets.append(asset)
        return assets

    def register_key(self, name: str, public_key_pem: str | bytes) -> None:
        """Accept JWTs signed by the private half of ``public_key_pem`` under key ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError("a CDP key name must be a non-empty string")
        self._keys[name] = load_public_key(public_key_pem)

    def key_names(self) -> list[str]:
        return sorted(self._keys)

    @property
    def products(self) -> list[str]:
        return list(self._specs)

    # ------------------------------------------------------------------ auth

    def authenticate(self, token: str | None, *, uri: str | None) -> str | None:
        """The key name a JWT was signed with, or None (refusals are logged, not told)."""
        if not token:
            return None
        try:
            return verify_jwt(token, self._keys, self._clock() // 1000, uri=uri)
        except JwtRefused as refusal:
            _log.info("refused a JWT: %s", refusal)
            return None

    # ------------------------------------------------------------------ REST

    def rest(  # noqa: PLR0917 - the request's parts, as the app reads them
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        host: str,
        authorization: str | None,
    ) -> Reply:
        """Answer one REST request under ``/api/v3/brokerage``."""
        method = method.upper()
        parts = _split_path(path)
        params = parse_qs(query, keep_blank_values=False)
        self.expire_due()
        public = parts[:1] == ["time"] or parts[:1] == ["market"]
        if not public:
            token = None
            if authorization and authorization.lower().startswith("bearer "):
                token = authorization[7:].strip()
            if self.authenticate(token, uri=f"{method} {host}{path}") is None:
                return _UNAUTHORIZED
        try:
            return self._route(method, parts, params, body)
        except _BadRequest as error:
            return _error(400, "INVALID_ARGUMENT", str(error))

    def track_api(
        self, method: str, path: str, query: str, host: str = "", authorization: str | None = None
    ) -> Reply:
        """The Coinbase App "Track APIs" under ``/v2`` that ccxt uses.

        Public: ``GET /v2/currencies`` (fiat: ``id``, ``name``, ``min_size``),
        ``/v2/currencies/crypto`` (``asset_id``, ``code``, ``name``,
        ``exponent``, ``type``, ...) and ``/v2/exchange-rates?currency=``
        (``{"data": {"currency", "rates"}}``), for the venue's assets only.
        Private (a CDP JWT as for ``/api/v3``): ``GET /v2/accounts``, the
        wallets with their total balance (ccxt's default ``fetch_balance``).
        """
        if method.upper() != "GET":
            return _error(404, "NOT_FOUND", "Not Found")
        if path == "/v2/accounts":
            token = None
            if authorization and authorization.lower().startswith("bearer "):
                token = authorization[7:].strip()
            if self.authenticate(token, uri=f"GET {host}{path}") is None:
                return _UNAUTHORIZED
            return Reply(200, self._wallets(parse_qs(query)))
        fiat = [a for a in self._account_ids if a in _FIAT]
        crypto = [a for a in self._account_ids if a not in _FIAT]
        if path == "/v2/currencies":
            data = [{"id": a, "name": a, "min_size": "0.01"} for a in fiat]
            return Reply(200, {"data": data})
        if path == "/v2/currencies/crypto":
            data = [
                {
                    "asset_id": self._account_ids[a],
                    "code": a,
                    "name": a,
                    "color": "#000000",
                    "sort_index": str(index),
                    "exponent": "8",
                    "type": "crypto",
                    "address_regex": "",
                }
                for index, a in enumerate(crypto)
            ]
            return Reply(200, {"data": data})
        if path == "/v2/exchange-rates":
            base = (parse_qs(query).get("currency") or ["USD"])[0]
            prices = {spec.base_asset: self._price(spec.symbol) for spec in self._specs.values()}
            prices.update(dict.fromkeys(fiat, Decimal(1)))
            if base not in prices:
                return _error(400, "INVALID_ARGUMENT", f"Invalid currency ({base})")
            rates = {asset: fmt(prices[base] / price) for asset, price in prices.items()}
            return Reply(200, {"data": {"currency": base, "rates": rates}})
        return _error(404, "NOT_FOUND", "Not Found")

    def _route(
        self, method: str, parts: list[str], params: dict[str, list[str]], body: bytes
    ) -> Reply:
        if method == "GET":
            if parts == ["time"]:
                return Reply(200, self._time())
            if parts in (["products"], ["market", "products"]):
                return Reply(200, self._list_products(params))
            if len(parts) == 2 and parts[0] == "products":
                return self._get_product(parts[1])
            if len(parts) == 3 and parts[:2] == ["market", "products"]:
                return self._get_product(parts[2])
            if len(parts) == 3 and parts[0] == "products" and parts[2] == "ticker":
                return self._market_trades(parts[1], params)
            if len(parts) == 4 and parts[:2] == ["market", "products"] and parts[3] == "ticker":
                return self._market_trades(parts[2], params)
            if parts == ["best_bid_ask"]:
                return Reply(200, self._best_bid_ask(params))
            if parts in (["product_book"], ["market", "product_book"]):
                return self._product_book(params)
            if parts == ["accounts"]:
                return Reply(200, self._list_accounts(params))
            if len(parts) == 2 and parts[0] == "accounts":
                return self._get_account(parts[1])
            if parts == ["orders", "historical", "batch"]:
                return Reply(200, self._list_orders(params))
            if parts == ["orders", "historical", "fills"]:
                return Reply(200, self._list_fills(params))
            if len(parts) == 3 and parts[:2] == ["orders", "historical"]:
                return self._get_order(parts[2])
            if parts == ["transaction_summary"]:
                return Reply(200, self._transaction_summary())
        if method == "POST":
            document = _json_body(body)
            if parts == ["orders"]:
                return Reply(200, self._create_order(document))
            if parts == ["orders", "batch_cancel"]:
                return Reply(200, self._batch_cancel(document))
            if parts == ["orders", "edit"]:
                return Reply(200, self._edit_order(document))
        return _error(404, "NOT_FOUND", "Not Found")

    # ------------------------------------------------------------ public data

    def _time(self) -> Json:
        now = self._clock()
        return {"iso": _rfc3339(now), "epochSeconds": str(now // 1000), "epochMillis": str(now)}

    def _price(self, symbol: str) -> Decimal:
        return self._shown_price.get(symbol) or self._sim.quote(symbol).last

    def _touch(self, symbol: str) -> tuple[Decimal, Decimal]:
        return self._books[symbol].touch(self._price(symbol))

    def _product(self, spec: InstrumentSpec) -> Json:
        bid, ask = self._touch(spec.symbol)
        return {
            "product_id": spec.symbol,
            "price": fmt(self._price(spec.symbol)),
            "price_percentage_change_24h": "0",
            "volume_24h": "0",
            "volume_percentage_change_24h": "0",
            "base_increment": fmt(spec.lot_size),
            "quote_increment": fmt(spec.tick_size),
            "quote_min_size": fmt(spec.min_notional),
            "quote_max_size": "150000000",
            "base_min_size": fmt(spec.min_quantity),
            "base_max_size": "3400",
            "base_name": spec.base_asset,
            "quote_name": spec.quote_asset,
            "watched": False,
            "is_disabled": False,
            "new": False,
            "status": "online",
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": False,
            "auction_mode": False,
            "product_type": "SPOT",
            "quote_currency_id": spec.quote_asset,
            "base_currency_id": spec.base_asset,
            "fcm_trading_session_details": None,
            "mid_market_price": fmt((bid + ask) / 2),
            "alias": "",
            "alias_to": [],
            "base_display_symbol": spec.base_asset,
            "quote_display_symbol": spec.quote_asset,
            "view_only": False,
            "price_increment": fmt(spec.tick_size),
            "display_name": f"{spec.base_asset}-{spec.quote_asset}",
            "product_venue": "CBE",
            "approximate_quote_24h_volume": "0",
        }

    def _list_products(self, params: dict[str, list[str]]) -> Json:
        wanted = params.get("product_ids")
        kind = (params.get("product_type") or ["SPOT"])[0]
        specs = [
            spec
            for spec in self._specs.values()
            if kind in ("SPOT", "UNKNOWN_PRODUCT_TYPE") and (not wanted or spec.symbol in wanted)
        ]
        return {"products": [self._product(spec) for spec in specs], "num_products": len(specs)}

    def _get_product(self, product_id: str) -> Reply:
        spec = self._specs.get(product_id)
        if spec is None:
            return _error(404, "NOT_FOUND", "ProductID is invalid")
        return Reply(200, self._product(spec))

    def _market_trades(self, product_id: str, params: dict[str, list[str]]) -> Reply:
        """``GET products/{id}/ticker``: the latest trades (this account's are the only ones)."""
        if product_id not in self._specs:
            return _error(404, "NOT_FOUND", "ProductID is invalid")
        limit = max(1, _int_param(params, "limit", _DEFAULT_PAGE))
        bid, ask = self._touch(product_id)
        trades = [
            {
                "trade_id": fill.trade_id,
                "product_id": product_id,
                "price": fmt(fill.price),
                "size": fmt(fill.size),
                "time": fill.trade_time,
                "side": fill.side,
                "exchange": "",
            }
            for fill in reversed(self._fills)
            if fill.product_id == product_id
        ][:limit]
        return Reply(200, {"trades": trades, "best_bid": fmt(bid), "best_ask": fmt(ask)})

    def _pricebook(self, symbol: str, levels: int) -> Json:
        price = self._price(symbol)
        book = self._books[symbol]
        depth = [
            (book.levels(price, Side.BUY)[:levels]),
            (book.levels(price, Side.SELL)[:levels]),
        ]
        return {
            "product_id": symbol,
            "bids": [{"price": fmt(p), "size": fmt(q)} for p, q in depth[0]],
            "asks": [{"price": fmt(p), "size": fmt(q)} for p, q in depth[1]],
            "time": _rfc3339(self._clock()),
        }

    def _best_bid_ask(self, params: dict[str, list[str]]) -> Json:
        wanted = params.get("product_ids") or list(self._specs)
        return {"pricebooks": [self._pricebook(s, 1) for s in wanted if s in self._specs]}

    def _product_book(self, params: dict[str, list[str]]) -> Reply:
        product_id = (params.get("product_id") or [""])[0]
        if product_id not in self._specs:
            return _error(404, "NOT_FOUND", "ProductID is invalid")
        limit = _int_param(params, "limit", _BOOK_LEVELS)
        return Reply(200, {"pricebook": self._pricebook(product_id, max(1, limit))})

    def _transaction_summary(self) -> Json:
        return {
            "total_volume": 0,
            "total_fees": 0,
            "fee_tier": {
                "pricing_tier": "Advanced 1",
                "usd_from": "0",
                "usd_to": "1000",
                "taker_fee_rate": fmt(TAKER_FEE_BPS / 10000),
                "maker_fee_rate": fmt(MAKER_FEE_BPS / 10000),
                "aop_from": "",
                "aop_to": "",
            },
            "margin_rate": None,
            "goods_and_services_tax": None,
            "advanced_trade_only_volume": 0,
            "advanced_trade_only_fees": 0,
            "coinbase_pro_volume": 0,
            "coinbase_pro_fees": 0,
            "total_balance": "",
            "has_promo_fee": False,
        }

    # --------------------------------------------------------------- accounts

    def _account(self, asset: str) -> Json:
        balance = self._sim.balance(asset)
        created = _rfc3339(self._created_ms)
        fiat = asset in _FIAT
        return {
            "uuid": self._account_ids[asset],
            "name": f"{asset} Wallet",
            "currency": asset,
            "available_balance": {"value": fmt(balance.free), "currency": asset},
            "default": fiat,
            "active": True,
            "created_at": created,
            "updated_at": created,
            "deleted_at": None,
            "type": "ACCOUNT_TYPE_FIAT" if fiat else "ACCOUNT_TYPE_CRYPTO",
            "ready": True,
            "hold": {"value": fmt(balance.locked), "currency": asset},
            "retail_portfolio_id": self._portfolio_id,
            "platform": "ACCOUNT_PLATFORM_CONSUMER",
        }

    def _list_accounts(self, params: dict[str, list[str]]) -> Json:
        assets = list(self._account_ids)
        page, cursor, has_next = _page(assets, params, default=49, maximum=250)
        return {
            "accounts": [self._account(asset) for asset in page],
            "has_next": has_next,
            "cursor": cursor,
            "size": len(page),
        }

    def _wallets(self, params: dict[str, list[str]]) -> Json:
        """``/v2/accounts``: one wallet per asset, ``balance`` its total (free and held)."""
        assets = list(self._account_ids)
        page, cursor, _ = _page(assets, params, default=25, maximum=300)
        created = _rfc3339(self._created_ms)
        data = []
        for asset in page:
            balance = self._sim.balance(asset)
            account_id = self._account_ids[asset]
            data.append(
                {
                    "id": account_id,
                    "name": f"{asset} Wallet",
                    "primary": asset in _FIAT,
                    "type": "fiat" if asset in _FIAT else "wallet",
                    "currency": {"code": asset, "name": asset, "exponent": 8, "type": "crypto"},
                    "balance": {"amount": fmt(balance.free + balance.locked), "currency": asset},
                    "created_at": created,
                    "updated_at": created,
                    "resource": "account",
                    "resource_path": f"/v2/accounts/{account_id}",
                }
            )
        return {
            "pagination": {
                "ending_before": None,
                "starting_after": None,
                "limit": len(page),
                "order": "desc",
                "next_starting_after": cursor or None,
                "next_uri": f"/v2/accounts?cursor={cursor}" if cursor else None,
            },
            "data": data,
        }

    def _get_account(self, account_uuid: str) -> Reply:
        for asset, account_id in self._account_ids.items():
            if account_id == account_uuid:
                return Reply(200, {"account": self._account(asset)})
        return _error(404, "NOT_FOUND", "account not found")

    # ----------------------------------------------------------------- orders

    def _view(self, order: _Order) -> SimOrder:
        view = self._sim.order_by_venue_id(order.venue_order_id)
        assert view is not None, "the simulator keeps every order (retain_closed_orders=None)"
        return view

    def _status(self, order: _Order, view: SimOrder) -> str:
        if view.status.is_open:
            return "OPEN"
        if view.status is SimOrderStatus.FILLED:
            return "FILLED"
        if view.status is SimOrderStatus.EXPIRED and order.expired_by_time:
            return "EXPIRED"
        return "CANCELLED"

    def _order_json(self, order: _Order) -> Json:
        view = self._view(order)
        status = self._status(order, view)
        filled = view.filled_quantity
        value = view.filled_notional
        fees = order.total_fees
        buy = order.side == "BUY"
        held = _ZERO
        if view.status.is_open:
            remaining = view.remaining_quantity
            if buy and view.price is not None:
                held = remaining * view.price * (1 + max(MAKER_FEE_BPS, TAKER_FEE_BPS) / 10000)
            elif not buy:
                held = remaining
        trigger = "INVALID_ORDER_TYPE"
        if order.order_type == "STOP_LIMIT":
            trigger = "STOP_TRIGGERED" if view.triggered else "STOP_PENDING"
        return {
            "order_id": order.order_id,
            "product_id": order.product_id,
            "user_id": self._user_id,
            "order_configuration": order.order_configuration,
            "side": order.side,
            "client_order_id": order.client_order_id,
            "status": status,
            "time_in_force": order.time_in_force,
            "created_time": order.created_time,
            "completion_percentage": fmt(_percent(filled, view.quantity)),
            "filled_size": fmt(filled),
            "average_filled_price": fmt(view.avg_fill_price or _ZERO),
            "fee": "",
            "number_of_fills": str(order.number_of_fills),
            "filled_value": fmt(value),
            "pending_cancel": False,
            "size_in_quote": False,
            "total_fees": fmt(fees),
            "size_inclusive_of_fees": False,
            "total_value_after_fees": fmt(value + fees if buy else value - fees),
            "trigger_status": trigger,
            "order_type": order.order_type,
            "reject_reason": "REJECT_REASON_UNSPECIFIED",
            "settled": not view.status.is_open,
            "product_type": "SPOT",
            "reject_message": "",
            "cancel_message": "User requested cancel" if status == "CANCELLED" else "",
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": fmt(held),
            "is_liquidation": False,
            "last_fill_time": order.last_fill_time,
            "edit_history": list(order.edit_history),
            "leverage": "",
            "margin_type": "UNKNOWN_MARGIN_TYPE",
            "retail_portfolio_id": self._portfolio_id,
            "originating_order_id": "",
            "attached_order_id": "",
            "attached_order_configuration": None,
        }

    def _user_order(self, order: _Order) -> Json:
        """The ``user`` channel's order shape (docs: websocket-channels, "Orders Fields")."""
        view = self._view(order)
        rest = self._order_json(order)
        return {
            "avg_price": rest["average_filled_price"],
            "cancel_reason": rest["cancel_message"],
            "client_order_id": order.client_order_id,
            "completion_percentage": rest["completion_percentage"],
            "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
            "cumulative_quantity": fmt(view.filled_quantity),
            "filled_value": rest["filled_value"],
            "leaves_quantity": fmt(view.remaining_quantity if view.status.is_open else _ZERO),
            "limit_price": fmt(view.price) if view.price is not None else "0",
            "number_of_fills": rest["number_of_fills"],
            "order_id": order.order_id,
            "order_side": order.side,
            "order_type": order.order_type,
            "outstanding_hold_amount": rest["outstanding_hold_amount"],
            "post_only": "true" if order.post_only else "false",
            "product_id": order.product_id,
            "product_type": "SPOT",
            "reject_reason": "",
            "retail_portfolio_id": self._portfolio_id,
            "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
            "status": rest["status"],
            "stop_price": fmt(view.stop_price) if view.stop_price is not None else "0",
            "time_in_force": order.time_in_force,
            "total_fees": rest["total_fees"],
            "total_value_after_fees": rest["total_value_after_fees"],
            "trigger_status": rest["trigger_status"],
            "creation_time": order.created_time,
            "end_time": order.end_time or _NOT_APPLICABLE_TIME,
            "start_time": _NOT_APPLICABLE_TIME,
        }

    def open_user_orders(self, product_ids: Sequence[str] | None) -> list[Json]:
        """The ``user`` channel's snapshot: every OPEN order (of ``product_ids``), oldest first."""
        return [
            self._user_order(order)
            for order in (self._orders[oid] for oid in self._order_list)
            if self._view(order).status.is_open
            and (not product_ids or order.product_id in product_ids)
        ]

    def _get_order(self, order_id: str) -> Reply:
        order = self._orders.get(order_id)
        if order is None:
            return _error(404, "NOT_FOUND", "order with this orderID was not found")
        return Reply(200, {"order": self._order_json(order)})

    def _list_orders(self, params: dict[str, list[str]]) -> Json:
        statuses = set(params.get("order_status") or [])
        products = set(params.get("product_ids") or params.get("product_id") or [])
        ids = set(params.get("order_ids") or [])
        sides = set(params.get("order_side") or [])
        types = set(params.get("order_types") or [])
        selected: list[Json] = []
        for order_id in reversed(self._order_list):
            order = self._orders[order_id]
            document = self._order_json(order)
            if statuses and document["status"] not in statuses:
                continue
            if products and order.product_id not in products:
                continue
            if ids and order_id not in ids:
                continue
            if sides and order.side not in sides:
                continue
            if types and order.order_type not in types:
                continue
            selected.append(document)
        page, cursor, has_next = _page(selected, params, default=_DEFAULT_PAGE, maximum=_MAX_PAGE)
        return {"orders": page, "sequence": "0", "has_next": has_next, "cursor": cursor}

    def _fill_json(self, fill: _Fill) -> Json:
        return {
            "entry_id": fill.entry_id,
            "trade_id": fill.trade_id,
            "order_id": fill.order_id,
            "trade_time": fill.trade_time,
            "trade_type": "FILL",
            "price": fmt(fill.price),
            "size": fmt(fill.size),
            "commission": fmt(fill.commission),
            "product_id": fill.product_id,
            "sequence_timestamp": fill.trade_time,
            "liquidity_indicator": fill.liquidity_indicator,
            "size_in_quote": False,
            "user_id": self._user_id,
            "side": fill.side,
            "retail_portfolio_id": self._portfolio_id,
        }

    def _list_fills(self, params: dict[str, list[str]]) -> Json:
        orders = set(params.get("order_ids") or params.get("order_id") or [])
        trades = set(params.get("trade_ids") or [])
        products = set(params.get("product_ids") or params.get("product_id") or [])
        start = (params.get("start_sequence_timestamp") or [""])[0]
        end = (params.get("end_sequence_timestamp") or [""])[0]
        start_ms = _parse_rfc3339(start) if start else None
        end_ms = _parse_rfc3339(end) if end else None
        selected = []
        for fill in reversed(self._fills):
            if orders and fill.order_id not in orders:
                continue
            if trades and fill.trade_id not in trades:
                continue
            if products and fill.product_id not in products:
                continue
            when = _parse_rfc3339(fill.trade_time)
            if (start_ms is not None and when < start_ms) or (end_ms is not None and when > end_ms):
                continue
            selected.append(self._fill_json(fill))
        page, cursor, _ = _page(selected, params, default=_DEFAULT_PAGE, maximum=_MAX_PAGE)
        return {"fills": page, "cursor": cursor}

    # ------------------------------------------------------------ placement

    def _create_order(self, document: Json) -> Json:
        client_order_id = document.get("client_order_id")
        if not isinstance(client_order_id, str) or not client_order_id:
            raise _BadRequest("client_order_id is required")
        self._submissions[client_order_id] = self._submissions.get(client_order_id, 0) + 1
        existing = self._by_client.get(client_order_id)
        if existing is not None:
            order = self._orders[existing]
            return _created(order)
        product_id = document.get("product_id")
        side = document.get("side")
        configuration = document.get("order_configuration")
        if not isinstance(product_id, str) or product_id not in self._specs:
            return _failure("INVALID_PRODUCT_ID", "", "INVALID_PRODUCT_ID", configuration)
        if side not in ("BUY", "SELL"):
            return _failure("INVALID_SIDE", "", "INVALID_SIDE", configuration)
        if not isinstance(configuration, dict) or len(configuration) != 1:
            return _failure(
                "UNSUPPORTED_ORDER_CONFIGURATION", "", "UNSUPPORTED_ORDER_CONFIGURATION", None
            )
        ((kind, settings),) = configuration.items()
        spec = self._specs[product_id]
        try:
            placement = self._placement(kind, settings, spec, Side(side))
        except _Unsupported:
            return _failure(
                "UNSUPPORTED_ORDER_CONFIGURATION",
                "",
                "UNSUPPORTED_ORDER_CONFIGURATION",
                configuration,
            )
        except _Refused as refused:
            return _failure(*_REFUSAL[refused.code], configuration)
        if placement.order_type is OrderType.MARKET and side == "BUY":
            # Coinbase checks a market buy's funds at the ask before it trades; the
            # simulator would instead fill what the book holds and drop the rest.
            _, ask = self._touch(product_id)
            cost = placement.quantity * ask * (1 + TAKER_FEE_BPS / 10000)
            if cost > self._sim.balance(spec.quote_asset).free:
                return _failure(*_REFUSAL[SimRejectCode.INSUFFICIENT_BALANCE], configuration)
        events = self._sim.submit(
            client_order_id,
            product_id,
            Side(side),
            placement.order_type,
            placement.quantity,
            price=placement.price,
            stop_price=placement.stop_price,
            time_in_force=placement.time_in_force,
            post_only=placement.post_only,
            expire_time_ns=placement.expire_time_ns,
        )
        if events and isinstance(events[0], SimRejected):
            rejected = events[0]
            if rejected.code is SimRejectCode.STOP_WOULD_TRIGGER:
                reason = (
                    "PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE"
                    if placement.stop_direction == "STOP_DIRECTION_STOP_UP"
                    else "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE"
                )
                return _failure("UNKNOWN_FAILURE_REASON", reason, "", configuration)
            mapped = _REFUSAL.get(
                rejected.code,
                ("UNSUPPORTED_ORDER_CONFIGURATION", "", "UNSUPPORTED_ORDER_CONFIGURATION"),
            )
            return _failure(*mapped, configuration)
        accepted = events[0]
        assert isinstance(accepted, SimAccepted)
        order = _Order(
            order_id=self._new_uuid(),
            client_order_id=client_order_id,
            venue_order_id=accepted.venue_order_id,
            product_id=product_id,
            side=side,
            configuration=kind,
            order_configuration={kind: dict(settings)},
            order_type=placement.order_type_name,
            time_in_force=placement.time_in_force_name,
            post_only=placement.post_only,
            end_time=placement.end_time,
            stop_direction=placement.stop_direction,
            created_time=_rfc3339(self._clock()),
        )
        self._orders[order.order_id] = order
        self._order_list.append(order.order_id)
        self._by_client[client_order_id] = order.order_id
        self._by_venue[accepted.venue_order_id] = order.order_id
        self._publish(events)
        return _created(order)

    def _placement(
        self, kind: str, settings: object, spec: InstrumentSpec, side: Side
    ) -> _Placement:
        if not isinstance(settings, dict) or kind not in _CONFIGURATIONS:
            raise _Unsupported
        if kind == "market_market_ioc":
            base = settings.get("base_size")
            quote = settings.get("quote_size")
            if (base is None) == (quote is None):
                raise _Unsupported
            quantity = (
                _decimal(base, "base_size")
                if base is not None
                else self._base_for_quote(spec, side, _decimal(quote, "quote_size"))
            )
            return _Placement(
                OrderType.MARKET,
                TimeInForce.IOC,
                quantity,
                order_type_name="MARKET",
                time_in_force_name="IMMEDIATE_OR_CANCEL",
            )
        size = _decimal(settings.get("base_size"), "base_size")
        price = _decimal(settings.get("limit_price"), "limit_price")
        if kind == "sor_limit_ioc":
            return _Placement(
                OrderType.LIMIT, TimeInForce.IOC, size, price,
                time_in_force_name="IMMEDIATE_OR_CANCEL",
            )  # fmt: skip
        if kind == "limit_limit_fok":
            return _Placement(
                OrderType.LIMIT, TimeInForce.FOK, size, price, time_in_force_name="FILL_OR_KILL"
            )
        post_only = settings.get("post_only", False)
        if not isinstance(post_only, bool):
            raise _BadRequest("post_only must be true or false")
        if kind == "limit_limit_gtc":
            return _Placement(OrderType.LIMIT, TimeInForce.GTC, size, price, post_only=post_only)
        if kind == "limit_limit_gtd":
            gtd_end, gtd_ns = self._end_time(settings)
            return _Placement(
                OrderType.LIMIT, TimeInForce.GTD, size, price, post_only=post_only,
                expire_time_ns=gtd_ns, time_in_force_name="GOOD_UNTIL_DATE_TIME",
                end_time=gtd_end,
            )  # fmt: skip
        if kind in ("stop_limit_stop_limit_gtc", "stop_limit_stop_limit_gtd"):
            stop = _decimal(settings.get("stop_price"), "stop_price")
            direction = settings.get("stop_direction")
            if direction not in ("STOP_DIRECTION_STOP_UP", "STOP_DIRECTION_STOP_DOWN"):
                raise _BadRequest("stop_direction must be STOP_DIRECTION_STOP_UP or _STOP_DOWN")
            rising = direction == "STOP_DIRECTION_STOP_UP"
            # A stop triggers on a move against the order, an if-touched order on a
            # move towards it; Coinbase names only the direction.
            sim_type = (
                OrderType.STOP_LIMIT if rising == (side is Side.BUY) else OrderType.LIMIT_IF_TOUCHED
            )
            gtd = kind.endswith("_gtd")
            end_time: str | None = None
            expire_ns: int | None = None
            if gtd:
                end_time, expire_ns = self._end_time(settings)
            return _Placement(
                sim_type, TimeInForce.GTD if gtd else TimeInForce.GTC, size, price, stop,
                expire_time_ns=expire_ns, order_type_name="STOP_LIMIT",
                time_in_force_name="GOOD_UNTIL_DATE_TIME" if gtd else "GOOD_UNTIL_CANCELLED",
                end_time=end_time, stop_direction=direction,
            )  # fmt: skip
        raise _Unsupported

    def _end_time(self, settings: Mapping[str, Any]) -> tuple[str, int]:
        text = settings.get("end_time")
        if not isinstance(text, str):
            raise _BadRequest("end_time is required (RFC 3339)")
        ms = _parse_rfc3339(text)
        if ms <= self._clock():
            raise _Refused(SimRejectCode.INVALID_EXPIRE_TIME)
        return text, ms * 1_000_000

    def _base_for_quote(self, spec: InstrumentSpec, side: Side, quote: Decimal) -> Decimal:
        """How much base a market order of ``quote`` buys (sells for) walking the book."""
        if quote <= 0:
            raise _Refused(SimRejectCode.INVALID_QUANTITY)
        price = self._sim.quote(spec.symbol).last
        levels = self._books[spec.symbol].levels(price, Side.SELL if side is Side.BUY else Side.BUY)
        left, base = quote, _ZERO
        for level_price, level_quantity in levels:
            take = min(level_quantity, left / level_price)
            base += take
            left -= take * level_price
            if left <= 0:
                break
        return (base // spec.lot_size) * spec.lot_size

    # ------------------------------------------------------- cancel and edit

    def _batch_cancel(self, document: Json) -> Json:
        order_ids = document.get("order_ids")
        if not isinstance(order_ids, list) or not all(isinstance(i, str) for i in order_ids):
            raise _BadRequest("order_ids must be a list of strings")
        results = []
        for order_id in order_ids:
            order = self._orders.get(order_id)
            if order is None:
                results.append(_cancel_result(order_id, "UNKNOWN_CANCEL_ORDER"))
                continue
            events = self._sim.cancel(order.client_order_id)
            if events and isinstance(events[0], SimRejected):
                filled = self._view(order).status is SimOrderStatus.FILLED
                reason = "ORDER_IS_FULLY_FILLED" if filled else "DUPLICATE_CANCEL_REQUEST"
                results.append(_cancel_result(order_id, reason))
                continue
            self._publish(events)
            results.append(_cancel_result(order_id, None))
        return {"results": results}

    def _edit_order(self, document: Json) -> Json:
        """``POST orders/edit``: a new ``price`` and ``size`` (the total) for a GTC order.

        Coinbase needs both fields even when one stays the same: a missing one
        reads as 0 and is refused (``INVALID_EDITED_SIZE``/``_PRICE``, or
        ``CANNOT_EDIT_TO_BELOW_FILLED_SIZE`` once something has filled).
        ``stop_price`` may change a stop-limit GTC order.
        """
        order_id = document.get("order_id")
        order = self._orders.get(order_id) if isinstance(order_id, str) else None
        if order is None:
            return _edit_failure("ORDER_NOT_FOUND")
        if order.configuration not in _EDITABLE:
            return _edit_failure("ONLY_LIMIT_ORDER_EDITS_SUPPORTED")
        view = self._view(order)
        if not view.status.is_open:
            return _edit_failure("ONLY_OPEN_ORDERS_CAN_BE_EDITED")
        price = _decimal(document.get("price", "0"), "price")
        size = _decimal(document.get("size", "0"), "size")
        stop = document.get("stop_price")
        stop_price = None
        if stop is not None and order.configuration.startswith("stop_limit"):
            stop_price = _decimal(stop, "stop_price")
        if 0 < size < view.filled_quantity or (size <= 0 < view.filled_quantity):
            return _edit_failure("CANNOT_EDIT_TO_BELOW_FILLED_SIZE")
        if size <= 0:
            return _edit_failure("INVALID_EDITED_SIZE")
        if price <= 0:
            return _edit_failure("INVALID_EDITED_PRICE")
        if (size, price, stop_price) == (view.quantity, view.price, None):
            return _edit_failure("EDIT_REQUEST_EQUAL_TO_ORIGINAL_REQUEST")
        events = self._sim.amend(
            order.client_order_id, quantity=size, price=price, stop_price=stop_price
        )
        if events and isinstance(events[0], SimRejected):
            reason = {
                SimRejectCode.QUANTITY_BELOW_FILLED: "CANNOT_EDIT_TO_BELOW_FILLED_SIZE",
                SimRejectCode.LOT_SIZE: "INVALID_EDITED_SIZE",
                SimRejectCode.TICK_SIZE: "INVALID_EDITED_PRICE",
                SimRejectCode.INVALID_PRICE: "INVALID_EDITED_PRICE",
            }.get(events[0].code, "COMMANDER_REJECTED_EDIT_ORDER")
            return _edit_failure(reason)
        settings = order.order_configuration[order.configuration]
        settings["limit_price"] = fmt(price)
        settings["base_size"] = fmt(size)
        if stop_price is not None:
            settings["stop_price"] = fmt(stop_price)
        order.edit_history.append(
            {
                "price": settings["limit_price"],
                "size": settings["base_size"],
                "replace_accept_timestamp": _rfc3339(self._clock()),
            }
        )
        self._publish(events)
        return {"success": True, "errors": []}

    # ------------------------------------------------------------ the market

    def step(self, count: int = 1, product_id: str | None = None) -> None:
        if product_id is not None and product_id not in self._specs:
            raise KeyError(product_id)
        for _ in range(count):
            if self._holding:
                self._held_moves.append(("step", product_id, None))
                continue
            self._publish(self._sim.step(product_id))
            self._market_data(self.products if product_id is None else [product_id])

    def set_price(self, product_id: str, price: Decimal) -> None:
        if product_id not in self._specs:
            raise KeyError(product_id)
        if self._holding:
            self._held_moves.append(("set", product_id, price))
            self._shown_price[product_id] = price
            self._market_data([product_id])
            return
        self._publish(self._sim.set_price(product_id, price))
        self._market_data([product_id])

    def hold_fills(self) -> None:
        """From now on price moves are shown but matched only at :meth:`release_fills`."""
        self._holding = True

    def release_fills(self) -> int:
        """Match the held price moves in order; returns how many fills they made."""
        self._holding = False
        moves, self._held_moves = self._held_moves, []
        self._shown_price.clear()
        before = len(self._fills)
        for kind, product_id, price in moves:
            if kind == "set" and product_id is not None and price is not None:
                self._publish(self._sim.set_price(product_id, price))
            else:
                self._publish(self._sim.step(product_id))
        self._market_data(self.products)
        return len(self._fills) - before

    def expire_due(self) -> None:
        """Expire the GTD orders whose ``end_time`` the clock has reached (user updates)."""
        self._publish(self._sim.expire_due())

    def quote(self, product_id: str) -> tuple[Decimal, Decimal, Decimal]:
        """``(bid, ask, last)`` as the venue shows them now."""
        bid, ask = self._touch(product_id)
        return bid, ask, self._price(product_id)

    def ticker(self, product_id: str) -> Json:
        """The ``ticker`` channel's entry for ``product_id``."""
        price = self._price(product_id)
        bid, ask = self._touch(product_id)
        quantity = self._config.level_quantity_for(product_id)
        return {
            "type": "ticker",
            "product_id": product_id,
            "price": fmt(price),
            "volume_24_h": "0",
            "low_24_h": fmt(price),
            "high_24_h": fmt(price),
            "low_52_w": fmt(price),
            "high_52_w": fmt(price),
            "price_percent_chg_24_h": "0",
            "best_bid": fmt(bid),
            "best_bid_quantity": fmt(quantity),
            "best_ask": fmt(ask),
            "best_ask_quantity": fmt(quantity),
        }

    def _book_levels(self, product_id: str) -> dict[tuple[str, Decimal], Decimal]:
        price = self._price(product_id)
        book = self._books[product_id]
        levels: dict[tuple[str, Decimal], Decimal] = {}
        for side, name in ((Side.BUY, "bid"), (Side.SELL, "offer")):
            for level_price, quantity in book.levels(price, side)[:_BOOK_LEVELS]:
                levels[(name, level_price)] = quantity
        return levels

    def book_snapshot(self, product_id: str) -> list[Json]:
        """The ``level2`` snapshot rows for ``product_id``."""
        now = _rfc3339(self._clock())
        return [
            _l2_row(side, price, quantity, now)
            for (side, price), quantity in self._shown_book[product_id].items()
        ]

    def _market_data(self, product_ids: Iterable[str]) -> None:
        now = _rfc3339(self._clock())
        for product_id in product_ids:
            self._emit(TickerUpdate(product_id, self.ticker(product_id)))
            old, new = self._shown_book[product_id], self._book_levels(product_id)
            self._shown_book[product_id] = new
            rows = [
                _l2_row(side, price, _ZERO, now)
                for (side, price) in old
                if (side, price) not in new
            ]
            rows += [
                _l2_row(side, price, quantity, now)
                for (side, price), quantity in new.items()
                if old.get((side, price)) != quantity
            ]
            if rows:
                self._emit(BookUpdate(product_id, tuple(rows)))

    # ---------------------------------------------------------------- events

    def _publish(self, events: Sequence[SimEvent]) -> None:
        """Book what the simulator did, then tell the ``user`` channel once per order."""
        touched: list[_Order] = []
        for event in events:
            order_id = self._by_venue.get(getattr(event, "venue_order_id", -1) or -1)
            if order_id is None:
                continue
            order = self._orders[order_id]
            if isinstance(event, SimFill):
                self._book_fill(order, event)
            elif isinstance(event, SimExpired):
                order.expired_by_time = event.reason == EXPIRED_TIME_REACHED
            elif not isinstance(event, SimAccepted | SimCanceled | SimTriggered | SimAmended):
                continue
            if order not in touched:
                touched.append(order)
        for order in touched:
            self._emit(UserUpdate(order.product_id, self._user_order(order)))

    def _book_fill(self, order: _Order, fill: SimFill) -> None:
        when = _rfc3339(fill.ts_ns // 1_000_000)
        order.number_of_fills += 1
        order.total_fees += fill.commission
        order.last_fill_time = when
        self._fills.append(
            _Fill(
                entry_id=self._new_uuid(),
                trade_id=self._new_uuid(),
                order_id=order.order_id,
                client_order_id=order.client_order_id,
                product_id=order.product_id,
                side=order.side,
                price=fill.price,
                size=fill.quantity,
                commission=fill.commission,
                liquidity_indicator="MAKER" if fill.is_maker else "TAKER",
                trade_time=when,
            )
        )

    # ------------------------------------------------------------ inspection

    def orders(self) -> list[CoinbaseOrderInfo]:
        """Every order ever placed, oldest first."""
        infos = []
        for order_id in self._order_list:
            order = self._orders[order_id]
            view = self._view(order)
            infos.append(
                CoinbaseOrderInfo(
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    product_id=order.product_id,
                    side=order.side,
                    order_type=order.order_type,
                    time_in_force=order.time_in_force,
                    status=self._status(order, view),
                    size=view.quantity,
                    filled_size=view.filled_quantity,
                    limit_price=view.price,
                    stop_price=view.stop_price,
                    average_filled_price=view.avg_fill_price,
                    number_of_fills=order.number_of_fills,
                    configuration=order.configuration,
                )
            )
        return infos

    def fills(self) -> list[CoinbaseFillInfo]:
        """Every fill, oldest first."""
        return [CoinbaseFillInfo(**dataclasses.asdict(fill)) for fill in self._fills]

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{currency: (available, hold)}``."""
        return {asset: (b.free, b.locked) for asset, b in self._sim.balances().items()}

    def submissions(self) -> dict[str, int]:
        """How many ``POST orders`` named each client_order_id (refused and duplicates too)."""
        return dict(self._submissions)

    def position(self, product_id: str) -> Decimal:
        return self._sim.position(product_id)


# ------------------------------------------------------------ answer shapes


class _Unsupported(Exception):
    """An order configuration the venue does not take."""


class _Refused(Exception):
    def __init__(self, code: SimRejectCode) -> None:
        super().__init__(code.value)
        self.code = code


def _json_body(body: bytes) -> Json:
    try:
        document = json.loads(body or b"{}")
    except ValueError as error:
        raise _BadRequest(f"the body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise _BadRequest("the body must be a JSON object")
    return document


def _created(order: _Order) -> Json:
    return {
        "success": True,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": order.order_id,
        "success_response": {
            "order_id": order.order_id,
            "product_id": order.product_id,
            "side": order.side,
            "client_order_id": order.client_order_id,
        },
        "order_configuration": order.order_configuration,
    }


def _failure(error: str, preview: str, new_order: str, configuration: object) -> Json:
    message = {
        "INSUFFICIENT_FUND": "Insufficient balance in source account",
        "INVALID_PRODUCT_ID": "ProductID is invalid",
        "INVALID_LIMIT_PRICE_POST_ONLY": "Limit price too aggressive for post-only order",
    }.get(error, preview or error)
    response: Json = {
        "error": error,
        "message": message,
        "error_details": message,
        "preview_failure_reason": preview or "UNKNOWN_PREVIEW_FAILURE_REASON",
        "new_order_failure_reason": new_order or "UNKNOWN_FAILURE_REASON",
    }
    return {
        "success": False,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": response,
        "order_configuration": configuration if isinstance(configuration, dict) else None,
    }


def _cancel_result(order_id: str, failure: str | None) -> Json:
    return {
        "success": failure is None,
        "failure_reason": failure or "UNKNOWN_CANCEL_FAILURE_REASON",
        "order_id": order_id,
    }


def _edit_failure(reason: str) -> Json:
    return {
        "success": False,
        "errors": [
            {
                "edit_failure_reason": reason,
                "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON",
            }
        ],
    }


def _l2_row(side: str, price: Decimal, quantity: Decimal, when: str) -> Json:
    return {
        "side": side,
        "event_time": when,
        "price_level": fmt(price),
        "new_quantity": fmt(quantity),
    }


def _percent(part: Decimal, whole: Decimal) -> Decimal:
    if whole <= 0:
        return _ZERO
    return (part * _HUNDRED / whole).quantize(Decimal("0.01"))


def _int_param(params: Mapping[str, list[str]], name: str, default: int) -> int:
    values = params.get(name)
    if not values:
        return default
    try:
        return int(values[0])
    except ValueError as error:
        raise _BadRequest(f"{name} must be an integer") from error


def _page(
    items: Sequence[Any], params: Mapping[str, list[str]], *, default: int, maximum: int
) -> tuple[list[Any], str, bool]:
    """One page of ``items`` from the opaque ``cursor`` on: (page, next cursor, has_next)."""
    limit = _int_param(params, "limit", default)
    if limit <= 0:
        limit = default
    limit = min(limit, maximum)
    cursor = (params.get("cursor") or [""])[0]
    start = 0
    if cursor:
        try:
            start = int(cursor)
        except ValueError as error:
            raise _BadRequest("cursor is invalid") from error
    page = list(items[start : start + limit])
    has_next = start + limit < len(items)
    return page, str(start + limit) if has_next else "", has_next
