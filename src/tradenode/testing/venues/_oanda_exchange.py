"""The fake OANDA's state: one v20 margin account, its transactions, orders, trades and prices.

Pure like :class:`~._binance_exchange.BinanceExchange`: no sockets, no
threads of its own, no wall clock (every stamp comes from the injected
millisecond clock), no global random state. The ASGI app hands it each REST
request as (method, path, query, body, Authorization header) and writes back
the :class:`Reply`; new transactions and price changes go to listeners,
called under the exchange's lock in the order they happened.

**Prices** come from :class:`tradenode.sim.MatchingSimulator`: its seeded
walk (``step``), ``set_price`` and its synthetic book (``depth_levels``
levels of ``level_quantity`` units each side), which is the liquidity every
fill takes from. The simulator's own spot order book and balances are not
used: OANDA is a margin account, so its ledger (balance, netted trades,
realized P/L, financing, margin) lives here.

**Matching** (documented choices where OANDA's rules are not public):

* MARKET: FOK (default) fills all units at once across the book or is
  cancelled (``INSUFFICIENT_LIQUIDITY``; ``BOUNDS_VIOLATION`` when
  ``priceBound`` left too little); IOC fills what the book (within
  ``priceBound``) has, in one ORDER_FILL, and cancels the rest with a
  second ORDER_CANCEL (``INSUFFICIENT_LIQUIDITY``) in the same batch. The
  order's state is then FILLED.
* LIMIT fills at its price or better; STOP triggers when the price moves
  through it and fills as a market order bounded by ``priceBound``;
  MARKET_IF_TOUCHED triggers when the price comes to it and fills as a
  market order. ``triggerCondition`` picks the price compared: DEFAULT
  (ask for buys, bid for sells), INVERSE, BID, ASK, MID. A resting order
  fills all or nothing (OANDA's resting orders do not partially fill here);
  FOK/IOC LIMIT, STOP and MIT orders execute at once or are cancelled
  (``TIME_IN_FORCE_EXPIRED`` when not triggered).
* GTD expires at ``gtdTime``; GFD at the next 21:00 UTC (the end of
  OANDA's trading day in New York winter time, a simplification). Expiry
  runs on every price move and every REST request: ORDER_CANCEL with
  ``TIME_IN_FORCE_EXPIRED``.
* positionFill: the account is netting (``hedgingEnabled`` false), so
  DEFAULT, REDUCE_FIRST and OPEN_ONLY all reduce opposite trades first
  (FIFO, oldest trade first) and open a trade with the rest. REDUCE_ONLY
  never opens or flips: its units are capped to the opposite position, and
  one that finds nothing to reduce when it would fill is cancelled with
  ``POSITION_SIZE_EXCEEDED`` (our choice; OANDA does not document the reason).
* clientExtensions.id is unique among every order the account ever had
  (OANDA's text says "another pending Order"; refusing reuse of a finished
  order's id is stricter and what exactly-once tests need). A replacement
  may reuse the id of the order it replaces.

**Money.** P/L is computed in the quote currency and converted to the home
currency at the fill: 1 if the quote is the home currency, else the mid of
``<QUOTE>_<HOME>`` or ``1 / mid(<HOME>_<QUOTE>)`` among the instruments
(USD_JPY's P/L in JPY is divided by the USD_JPY price), else 1. Money is
rounded half-even to 4 decimals. No commission (spread-only pricing).
Margin is ``|units| * mid * conversion * marginRate``. With ``financing``
on, :meth:`OandaExchange.charge_financing` books a DAILY_FINANCING at 3 % a
year against every open trade.

**Not modelled** (answered 404 or ignored): TAKE_PROFIT / STOP_LOSS /
TRAILING_STOP_LOSS orders and the ``*OnFill`` attachments (accepted in a
request, never created), ``/changes``, client-extension modification,
hedging accounts, margin calls and closeouts, order reissue on partial
fills, ``Accept-Datetime-Format: UNIX`` in answers (every DateTime is
RFC 3339 with nanoseconds; ``gtdTime`` is read in either form). The account
opens with two transactions, CREATE and TRANSFER_FUNDS (ids 1 and 2).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from tradenode.sim import InstrumentSpec, MatchingSimulator, SimConfig

__all__ = [
    "DEFAULT_OANDA_ACCOUNT_ID",
    "DEFAULT_OANDA_INSTRUMENTS",
    "DEFAULT_OANDA_TOKEN",
    "Json",
    "OandaEvent",
    "OandaExchange",
    "Reply",
]

Json = dict[str, Any]

DEFAULT_OANDA_ACCOUNT_ID = "101-001-0000000-001"
DEFAULT_OANDA_TOKEN = "tradenode-fake-oanda-token-0000000000000000-000000000000000000000000"
DEFAULT_OANDA_INSTRUMENTS = ("EUR_USD", "USD_JPY", "GBP_USD")

_USER_ID = 1000001
_MONEY = Decimal("0.0001")
_MARGIN_RATE = Decimal("0.02")
_FINANCING_RATE = Decimal("0.03")
_MAX_UNITS = Decimal(100_000_000)
_ORDER_TYPES = ("MARKET", "LIMIT", "STOP", "MARKET_IF_TOUCHED")
_TIME_IN_FORCE = ("GTC", "GTD", "GFD", "FOK", "IOC")
_POSITION_FILL = ("DEFAULT", "OPEN_ONLY", "REDUCE_FIRST", "REDUCE_ONLY")
_TRIGGER_CONDITIONS = ("DEFAULT", "INVERSE", "BID", "ASK", "MID")
_ACCOUNT_ID = re.compile(r"^\d{3}-\d{3}-\d+-\d{3}$")
_KNOWN_PRICES = {
    "EUR_USD": Decimal("1.08000"),
    "USD_JPY": Decimal("150.000"),
    "GBP_USD": Decimal("1.27000"),
    "AUD_USD": Decimal("0.66000"),
    "USD_CAD": Decimal("1.36000"),
    "USD_CHF": Decimal("0.88000"),
    "EUR_JPY": Decimal("162.000"),
    "EUR_GBP": Decimal("0.85000"),
}
_MESSAGES = {
    "INSTRUMENT_MISSING": "The instrument was not specified",
    "INSTRUMENT_UNKNOWN": "The instrument specified is unknown",
    "UNITS_MISSING": "The Order units were not specified",
    "UNITS_INVALID": "The units specified is invalid",
    "UNITS_PRECISION_EXCEEDED": "The units specified contain more precision than is allowed for the instrument",
    "UNITS_LIMIT_EXCEEDED": "The units specified exceeds the maximum number of units allowed",
    "UNITS_MIMIMUM_NOT_MET": "The units specified is less than the minimum number of units required",
    "PRICE_MISSING": "The Order price was not specified",
    "PRICE_INVALID": "The price specified is invalid",
    "PRICE_PRECISION_EXCEEDED": "The price specified contains more precision than is allowed for the instrument",
    "PRICE_BOUND_INVALID": "The price bound specified is invalid",
    "PRICE_BOUND_PRECISION_EXCEEDED": "The price bound specified contains more precision than is allowed for the instrument",
    "TIME_IN_FORCE_INVALID": "The time-in-force specified is invalid for this Order type",
    "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING": "The Order is a GTD Order but no gtdTime was specified",
    "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST": "The gtdTime specified is in the past",
    "ORDER_FILL_POSITION_ACTION_INVALID": "The position fill option specified is invalid",
    "TRIGGER_CONDITION_INVALID": "The trigger condition specified is invalid",
    "CLIENT_ORDER_ID_INVALID": "The client Order ID specified is invalid",
    "CLIENT_ORDER_ID_ALREADY_EXISTS": "The client Order ID specified is already assigned to another Order",
    "ORDER_DOESNT_EXIST": "The Order specified does not exist",
    "TYPE_INVALID": "The Order type specified is invalid",
}


@dataclass(frozen=True, slots=True)
class Reply:
    """One REST answer: status, JSON body and extra headers."""

    status: int
    body: Json
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OandaEvent:
    """What the exchange tells its listeners: a new transaction, or a new price of an instrument."""

    kind: str
    """``transaction`` or ``price``."""
    payload: Json


@dataclass(frozen=True, slots=True)
class _Instrument:
    name: str
    base: str
    quote: str
    precision: int
    pip_location: int

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.precision)


@dataclass(slots=True)
class _Order:
    id: str
    type: str
    instrument: str
    units: Decimal
    time_in_force: str
    position_fill: str
    create_time: str
    price: Decimal | None = None
    price_bound: Decimal | None = None
    gtd_ms: int | None = None
    gtd_time: str | None = None
    trigger_condition: str = "DEFAULT"
    client_extensions: Json | None = None
    trade_client_extensions: Json | None = None
    state: str = "PENDING"
    reason: str = "CLIENT_ORDER"
    replaces_order_id: str | None = None
    replaced_by_order_id: str | None = None
    done: Json = field(default_factory=dict)
    queued: bool = False
    extra: Json = field(default_factory=dict)
    """``tradeClose`` / ``longPositionCloseout`` / ``shortPositionCloseout`` of a closing order."""

    @property
    def client_id(self) -> str | None:
        ext = self.client_extensions
        value = None if ext is None else ext.get("id")
        return value if isinstance(value, str) else None


@dataclass(slots=True)
class _Trade:
    id: str
    instrument: str
    price: Decimal
    open_time: str
    initial_units: Decimal
    current_units: Decimal
    initial_margin: Decimal
    client_extensions: Json | None
    realized_pl: Decimal = Decimal(0)
    financing: Decimal = Decimal(0)
    closed_units: Decimal = Decimal(0)
    close_value: Decimal = Decimal(0)
    closing_ids: list[str] = field(default_factory=list)
    close_time: str | None = None

    @property
    def is_open(self) -> bool:
        return self.current_units != 0


@dataclass(slots=True)
class _Batch:
    time: str
    id: str | None = None
    created: list[Json] = field(default_factory=list)


class _Refused(Exception):
    """An order request refused by validation, before anything changes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NotFound(Exception):
    """A 404 answer, raised from deep inside a handler."""

    def __init__(self, body: Json) -> None:
        super().__init__(body.get("errorMessage", ""))
        self.body = body


class _BadRequest(Exception):
    """A 400 answer without a transaction (malformed query or body)."""


def _money(value: Decimal) -> str:
    return str(value.quantize(_MONEY, rounding=ROUND_HALF_EVEN))


def _units(value: Decimal) -> str:
    return str(value.quantize(Decimal(1)))


def _sign(value: Decimal) -> int:
    return 1 if value > 0 else (-1 if value < 0 else 0)


def _timestamp(ms: int) -> str:
    """RFC 3339 with nanoseconds, as OANDA writes DateTime fields."""
    seconds, millis = divmod(ms, 1000)
    base = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{millis:03d}000000Z"


def parse_time(text: str) -> int:
    """An RFC 3339 or UNIX (seconds) DateTime string as epoch milliseconds; ``ValueError`` if neither."""
    try:
        return int(Decimal(text) * 1000)
    except (InvalidOperation, ValueError):
        pass
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise ValueError(f"not an RFC 3339 or UNIX time: {text!r}")
    zone = "+00:00" if match[3] == "Z" else match[3]
    when = dt.datetime.fromisoformat(match[1] + zone)
    fraction = (match[2] or "0").ljust(9, "0")
    return int(when.timestamp()) * 1000 + int(fraction) // 1_000_000


def _instrument(name: str) -> _Instrument:
    base, sep, quote = name.partition("_")
    if not sep or not base or not quote:
        raise ValueError(f"instrument {name!r}: expected BASE_QUOTE, e.g. EUR_USD")
    precision = 3 if quote in ("JPY", "HUF", "THB") else 5
    return _Instrument(name, base, quote, precision, -2 if precision == 3 else -4)


def _sim_config(
    instruments: Sequence[_Instrument], level_quantity: Decimal, spread_bps: Decimal
) -> SimConfig:
    specs = []
    for inst in instruments:
        price = _KNOWN_PRICES.get(inst.name, Decimal(1)).quantize(inst.tick)
        specs.append(
            InstrumentSpec(
                symbol=inst.name,
                base_asset=inst.base,
                quote_asset=inst.quote,
                initial_price=price,
                tick_size=inst.tick,
                lot_size=Decimal(1),
                min_quantity=Decimal(1),
                min_notional=Decimal(0),
                spread_bps=spread_bps,
                volatility_bps=Decimal("0.8"),
                level_quantity=level_quantity,
            )
        )
    assets = {asset for inst in instruments for asset in (inst.base, inst.quote)}
    return SimConfig(
        instruments=tuple(specs),
        balances=dict.fromkeys(sorted(assets), Decimal(10) ** 15),
        depth_levels=5,
        level_spacing_bps=Decimal("0.5"),
        allow_short=True,
        retain_closed_orders=1,
    )


class OandaExchange:
    """One OANDA v20 account (netting, spread-only) on the simulator's prices.

    Thread-safe: every public method takes the exchange's lock, so the
    server thread (REST) and a test thread (knobs) may call at once.
    """

    def __init__(
        self,
        *,
        account_id: str = DEFAULT_OANDA_ACCOUNT_ID,
        token: str = DEFAULT_OANDA_TOKEN,
        instruments: Sequence[str] | None = None,
        balance: Decimal = Decimal(100000),
        currency: str = "USD",
        seed: int = 0,
        clock: Callable[[], int],
        financing: bool = False,
        level_quantity: Decimal = Decimal(1_000_000),
        spread_bps: Decimal = Decimal("1.4"),
    ) -> None:
        if not _ACCOUNT_ID.match(account_id):
            raise ValueError(
                f"account_id {account_id!r}: expected OANDA's form 101-001-1234567-001"
            )
        if not token:
            raise ValueError("token must not be empty")
        names = list(DEFAULT_OANDA_INSTRUMENTS if instruments is None else instruments)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"instruments {names!r}: at least one, no duplicates")
        self._lock = threading.RLock()
        self.account_id = account_id
        self._token = token
        self.currency = currency
        self._clock = clock
        self._financing = financing
        self._instruments = {name: _instrument(name) for name in names}
        self._sim = MatchingSimulator(
            _sim_config(list(self._instruments.values()), level_quantity, Decimal(spread_bps)),
            seed=seed,
            clock=lambda: self._clock() * 1_000_000,
        )
        self._depth = 5
        self._balance = Decimal(balance)
        self._pl = Decimal(0)
        self._financing_total = Decimal(0)
        self._transactions: list[Json] = []
        self._orders: dict[str, _Order] = {}
        self._trades: dict[str, _Trade] = {}
        self._client_ids: dict[str, str] = {}
        self._submissions: dict[str, int] = {}
        self._held = False
        self._queued: list[tuple[str, tuple[list[tuple[Decimal, Decimal]], ...]]] = []
        self._listeners: list[Callable[[OandaEvent], None]] = []
        self._request_number = 0
        self._last_fill_time: str | None = None
        self._created_time = _timestamp(self._clock())
        batch = _Batch(self._created_time)
        self._txn(
            batch,
            "CREATE",
            divisionID=1,
            siteID=101,
            accountUserID=_USER_ID,
            accountNumber=1,
            homeCurrency=currency,
        )
        self._txn(
            batch,
            "TRANSFER_FUNDS",
            amount=_money(self._balance),
            fundingReason="CLIENT_FUNDING",
            accountBalance=_money(self._balance),
        )

    # ------------------------------------------------------------ plumbing

    def add_listener(self, listener: Callable[[OandaEvent], None]) -> None:
        """Called under the lock with each new transaction and each price change, in order."""
        self._listeners.append(listener)

    def check_token(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the account's bearer token."""
        return authorization == f"Bearer {self._token}"

    @property
    def last_transaction_id(self) -> str:
        with self._lock:
            last: str = self._transactions[-1]["id"]
            return last

    def now(self) -> str:
        return _timestamp(self._clock())

    def _emit(self, kind: str, payload: Json) -> None:
        for listener in self._listeners:
            listener(OandaEvent(kind, payload))

    def _txn(self, batch: _Batch, type_: str, **fields: Any) -> Json:
        number = int(self._transactions[-1]["id"]) + 1 if self._transactions else 1
        txn_id = str(number)
        if batch.id is None:
            batch.id = txn_id
        txn: Json = {
            "id": txn_id,
            "time": batch.time,
            "userID": _USER_ID,
            "accountID": self.account_id,
            "batchID": batch.id,
            "type": type_,
        }
        txn.update({key: value for key, value in fields.items() if value is not None})
        self._transactions.append(txn)
        batch.created.append(txn)
        self._emit("transaction", txn)
        return txn

    def _next_id(self) -> str:
        return str(int(self._transactions[-1]["id"]) + 1)

    # ------------------------------------------------------------- prices

    def quote(self, instrument: str) -> tuple[Decimal, Decimal]:
        with self._lock:
            self._known(instrument)
            q = self._sim.quote(instrument)
            return q.bid, q.ask

    def _mid(self, instrument: str) -> Decimal:
        q = self._sim.quote(instrument)
        return (q.bid + q.ask) / 2

    def _known(self, instrument: str) -> _Instrument:
        inst = self._instruments.get(instrument)
        if inst is None:
            raise KeyError(instrument)
        return inst

    def set_price(self, instrument: str, price: Decimal) -> None:
        """Move ``instrument``'s mid price; resting orders that now trigger fill."""
        with self._lock:
            self._known(instrument)
            self._sim.set_price(instrument, Decimal(price))
            self._after_move([instrument])

    def step(self, n: int = 1, instrument: str | None = None) -> None:
        """``n`` ticks of the seeded walk (one instrument or all)."""
        with self._lock:
            names = list(self._instruments) if instrument is None else [instrument]
            for name in names:
                self._known(name)
            for _ in range(n):
                for name in names:
                    self._sim.step(name)
                self._after_move(names)

    def _after_move(self, names: Iterable[str]) -> None:
        batch = _Batch(self.now())
        self._expire_due(batch)
        for name in names:
            self._emit("price", self._price(name, with_type=True))
            self._match_resting(name)

    def price_lines(self, instruments: Iterable[str]) -> list[Json]:
        with self._lock:
            return [self._price(name, with_type=True) for name in instruments]

    def _price(self, instrument: str, *, with_type: bool) -> Json:
        bids, asks = self._sim.depth(instrument, self._depth)
        q = self._sim.quote(instrument)
        body: Json = {"type": "PRICE"} if with_type else {}
        body.update(
            {
                "instrument": instrument,
                "time": _timestamp(q.ts_ns // 1_000_000),
                "status": "tradeable",
                "tradeable": True,
                "bids": [{"price": str(p), "liquidity": int(qty)} for p, qty in bids],
                "asks": [{"price": str(p), "liquidity": int(qty)} for p, qty in asks],
                "closeoutBid": str(q.bid),
                "closeoutAsk": str(q.ask),
            }
        )
        return body

    def _conversion(self, quote: str) -> Decimal:
        """Quote currency to home currency (see the module docstring)."""
        if quote == self.currency:
            return Decimal(1)
        direct = f"{quote}_{self.currency}"
        if direct in self._instruments:
            return self._mid(direct)
        inverse = f"{self.currency}_{quote}"
        if inverse in self._instruments:
            return Decimal(1) / self._mid(inverse)
        return Decimal(1)

    # --------------------------------------------------------- inspection

    def orders(self) -> list[Json]:
        with self._lock:
            return [self._order_view(order) for order in self._orders.values()]

    def transactions(self) -> list[Json]:
        with self._lock:
            return [dict(txn) for txn in self._transactions]

    def positions(self) -> dict[str, Decimal]:
        with self._lock:
            return {name: self._net(name) for name in self._instruments if self._net(name) != 0}

    def balance(self) -> Decimal:
        with self._lock:
            return self._balance

    def submissions(self) -> dict[str, int]:
        with self._lock:
            return dict(self._submissions)

    def _net(self, instrument: str) -> Decimal:
        return sum(
            (t.current_units for t in self._trades.values() if t.instrument == instrument),
            Decimal(0),
        )

    # ------------------------------------------------------------- knobs

    def hold_fills(self) -> None:
        with self._lock:
            self._held = True

    def release_fills(self) -> int:
        """Execute the queued fills (at the prices that triggered them); returns how many ran."""
        with self._lock:
            self._held = False
            queued, self._queued = self._queued, []
            ran = 0
            for order_id, levels in queued:
                order = self._orders[order_id]
                order.queued = False
                if order.state != "PENDING":
                    continue
                batch = _Batch(self.now())
                if self._execute(order, batch, resting=True, levels=levels):
                    ran += 1
            return ran

    def charge_financing(self) -> Json | None:
        """Book one DAILY_FINANCING on every open trade; None (nothing booked) when financing is off."""
        with self._lock:
            if not self._financing:
                return None
            batch = _Batch(self.now())
            per_instrument: dict[str, list[Json]] = {}
            total = Decimal(0)
            for trade in self._trades.values():
                if not trade.is_open:
                    continue
                inst = self._instruments[trade.instrument]
                value = abs(trade.current_units) * self._mid(trade.instrument)
                amount = -(value * self._conversion(inst.quote) * _FINANCING_RATE / 365).quantize(
                    _MONEY, rounding=ROUND_HALF_EVEN
                )
                trade.financing += amount
                total += amount
                per_instrument.setdefault(trade.instrument, []).append(
                    {"tradeID": trade.id, "financing": _money(amount)}
                )
            self._balance += total
            self._financing_total += total
            return self._txn(
                batch,
                "DAILY_FINANCING",
                financing=_money(total),
                accountBalance=_money(self._balance),
                accountFinancingMode="DAILY",
                positionFinancings=[
                    {
                        "instrument": name,
                        "financing": _money(
                            sum((Decimal(f["financing"]) for f in items), Decimal(0))
                        ),
                        "openTradeFinancings": items,
                    }
                    for name, items in per_instrument.items()
                ],
            )

    def book_transaction(self, type_: str) -> Json:
        """Book a bare transaction of ``type_`` (say, one OANDA added after this fake
        was written): in the history and on the stream like any other."""
        with self._lock:
            return self._txn(_Batch(self.now()), type_)

    # -------------------------------------------------------------- REST

    def rest(
        self, method: str, path: str, query: str, body: bytes, authorization: str | None
    ) -> Reply:
        """Answer one REST request (already past the app's faults)."""
        with self._lock:
            self._request_number += 1
            headers = {"RequestID": str(10_000_000_000 + self._request_number)}
            if not self.check_token(authorization):
                return Reply(
                    401, {"errorMessage": "Insufficient authorization to perform request."}, headers
                )
            try:
                reply = self._route(method, path, parse_qs(query), body)
            except _NotFound as missing:
                reply = Reply(404, missing.body)
            except _BadRequest as error:
                reply = Reply(400, {"errorMessage": str(error)})
            return dataclasses.replace(reply, headers={**headers, **reply.headers})

    def stream_check(self, path: str, query: str, authorization: str | None) -> Reply | list[str]:
        """A stream request's refusal, or the instruments it asks for (empty: transactions)."""
        with self._lock:
            if not self.check_token(authorization):
                return Reply(
                    401, {"errorMessage": "Insufficient authorization to perform request."}
                )
            account = self._account_refusal(path)
            if account is not None:
                return account
            if path.endswith("/transactions/stream"):
                return []
            params = parse_qs(query)
            wanted = ",".join(params.get("instruments", [])).split(",")
            names = [name for name in wanted if name]
            if not names:
                return Reply(400, {"errorMessage": "Invalid value specified for 'instruments'"})
            unknown = [name for name in names if name not in self._instruments]
            if unknown:
                return Reply(
                    400,
                    {"errorMessage": f"Invalid value specified for 'instruments': {unknown[0]}"},
                )
            return names

    def _account_refusal(self, path: str) -> Reply | None:
        parts = path.split("/")
        if len(parts) < 4 or parts[3] == self.account_id:
            return None
        if not _ACCOUNT_ID.match(parts[3]):
            return Reply(400, {"errorMessage": "Invalid value specified for 'accountID'"})
        return Reply(404, {"errorMessage": "The specified account does not exist"})

    def _route(self, method: str, path: str, params: dict[str, list[str]], body: bytes) -> Reply:
        parts = [part for part in path.split("/") if part]
        if parts[:2] != ["v3", "accounts"]:
            return Reply(404, {"errorMessage": "The requested resource was not found"})
        rest = parts[2:]
        if not rest:
            if method == "GET":
                return Reply(200, {"accounts": [{"id": self.account_id, "tags": []}]})
            return _not_allowed()
        refusal = self._account_refusal(path)
        if refusal is not None:
            return refusal
        self._expire_due(_Batch(self.now()))
        route = rest[1:]
        key = (method, *_shape(route))
        handler = _ROUTES.get(key)
        if handler is None:
            if any(k[1:] == _shape(route) for k in _ROUTES):
                return _not_allowed()
            return Reply(404, {"errorMessage": "The requested resource was not found"})
        data: Json = {}
        if body.strip():
            try:
                loaded = json.loads(body)
            except ValueError:
                return Reply(400, {"errorMessage": "The request body is not valid JSON"})
            if not isinstance(loaded, dict):
                return Reply(400, {"errorMessage": "The request body must be a JSON object"})
            data = loaded
        return handler(self, route, params, data)

    def _ok(self, status: int, body: Json) -> Reply:
        body["lastTransactionID"] = self._transactions[-1]["id"]
        return Reply(status, body)

    # accounts ------------------------------------------------------------

    def _summary(self) -> Json:
        unrealized = Decimal(0)
        margin = Decimal(0)
        value = Decimal(0)
        for trade in self._trades.values():
            if trade.is_open:
                unrealized += self._unrealized(trade)
                margin += self._margin(trade.instrument, trade.current_units)
                value += self._value(trade.instrument, trade.current_units)
        nav = self._balance + unrealized
        pending = sum(1 for o in self._orders.values() if o.state == "PENDING")
        return {
            "id": self.account_id,
            "alias": "Primary",
            "currency": self.currency,
            "balance": _money(self._balance),
            "createdByUserID": _USER_ID,
            "createdTime": self._created_time,
            "guaranteedStopLossOrderMode": "DISABLED",
            "pl": _money(self._pl),
            "resettablePL": _money(self._pl),
            "resettablePLTime": "0",
            "financing": _money(self._financing_total),
            "commission": "0.0000",
            "guaranteedExecutionFees": "0.0000",
            "marginRate": str(_MARGIN_RATE),
            "openTradeCount": sum(1 for t in self._trades.values() if t.is_open),
            "openPositionCount": len(self.positions()),
            "pendingOrderCount": pending,
            "hedgingEnabled": False,
            "lastOrderFillTimestamp": self._last_fill_time,
            "unrealizedPL": _money(unrealized),
            "NAV": _money(nav),
            "marginUsed": _money(margin),
            "marginAvailable": _money(nav - margin),
            "positionValue": _money(value),
            "marginCloseoutUnrealizedPL": _money(unrealized),
            "marginCloseoutNAV": _money(nav),
            "marginCloseoutMarginUsed": _money(margin),
            "marginCloseoutPercent": _money(margin / 2 / nav if nav > 0 else Decimal(0)),
            "marginCloseoutPositionValue": _money(value),
            "withdrawalLimit": _money(max(nav - margin, Decimal(0))),
            "marginCallMarginUsed": _money(margin),
            "marginCallPercent": _money(margin / nav if nav > 0 else Decimal(0)),
        }

    def _get_account(self, _route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        account = self._summary()
        account["orders"] = [
            self._order_view(o) for o in self._orders.values() if o.state == "PENDING"
        ]
        account["trades"] = [self._trade_view(t) for t in self._trades.values() if t.is_open]
        account["positions"] = [self._position_view(name) for name in self._traded()]
        account["lastTransactionID"] = self._transactions[-1]["id"]
        return self._ok(200, {"account": account})

    def _get_summary(self, _route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        account = self._summary()
        account["lastTransactionID"] = self._transactions[-1]["id"]
        return self._ok(200, {"account": account})

    def _get_instruments(self, _route: list[str], params: dict[str, list[str]], _d: Json) -> Reply:
        wanted = [n for n in ",".join(params.get("instruments", [])).split(",") if n]
        names = wanted or list(self._instruments)
        out = []
        for name in names:
            inst = self._instruments.get(name)
            if inst is None:
                raise _BadRequest(f"Invalid value specified for 'instruments': {name}")
            out.append(
                {
                    "name": name,
                    "type": "CURRENCY",
                    "displayName": name.replace("_", "/"),
                    "pipLocation": inst.pip_location,
                    "displayPrecision": inst.precision,
                    "tradeUnitsPrecision": 0,
                    "minimumTradeSize": "1",
                    "maximumTrailingStopDistance": "1.00000",
                    "minimumTrailingStopDistance": "0.00050",
                    "maximumPositionSize": "0",
                    "maximumOrderUnits": _units(_MAX_UNITS),
                    "marginRate": str(_MARGIN_RATE),
                    "guaranteedStopLossOrderMode": "DISABLED",
                    "tags": [],
                }
            )
        return self._ok(200, {"instruments": out})

    def _get_pricing(self, _route: list[str], params: dict[str, list[str]], _d: Json) -> Reply:
        names = [n for n in ",".join(params.get("instruments", [])).split(",") if n]
        if not names:
            raise _BadRequest("Invalid value specified for 'instruments'")
        for name in names:
            if name not in self._instruments:
                raise _BadRequest(f"Invalid value specified for 'instruments': {name}")
        return Reply(
            200, {"prices": [self._price(n, with_type=False) for n in names], "time": self.now()}
        )

    # orders ---------------------------------------------------------------

    def _find_order(self, specifier: str) -> _Order | None:
        if specifier.startswith("@"):
            order_id = self._client_ids.get(specifier[1:])
            return None if order_id is None else self._orders.get(order_id)
        return self._orders.get(specifier)

    def _order_missing(self, specifier: str) -> _NotFound:
        return _NotFound(
            {
                "errorCode": "ORDER_DOESNT_EXIST",
                "errorMessage": _MESSAGES["ORDER_DOESNT_EXIST"],
                "lastTransactionID": self._transactions[-1]["id"],
            }
        )

    def _post_order(self, _route: list[str], _p: dict[str, list[str]], data: Json) -> Reply:
        request = data.get("order")
        self._count_submission(request)
        if not isinstance(request, dict):
            raise _BadRequest("Invalid value specified for 'order'")
        return self._create(request, replacing=None)

    def _put_order(self, route: list[str], _p: dict[str, list[str]], data: Json) -> Reply:
        request = data.get("order")
        self._count_submission(request)
        old = self._find_order(route[1])
        batch = _Batch(self.now())
        if old is None or old.state != "PENDING":
            return self._cancel_rejected(old, batch)
        if not isinstance(request, dict):
            raise _BadRequest("Invalid value specified for 'order'")
        return self._create(request, replacing=old)

    def _count_submission(self, request: Any) -> None:
        if isinstance(request, dict):
            ext = request.get("clientExtensions")
            if isinstance(ext, dict) and isinstance(ext.get("id"), str):
                self._submissions[ext["id"]] = self._submissions.get(ext["id"], 0) + 1

    def _create(self, request: Json, replacing: _Order | None) -> Reply:
        batch = _Batch(self.now())
        order_type = request.get("type", "MARKET")
        try:
            order = self._parse_order(request, replacing)
        except _Refused as refused:
            txn_type = (
                f"{order_type}_ORDER_REJECT"
                if order_type in _ORDER_TYPES
                else "MARKET_ORDER_REJECT"
            )
            fields = {k: v for k, v in request.items() if k != "type"}
            reject = self._txn(batch, txn_type, **fields, rejectReason=refused.reason)
            if replacing is not None:
                reject["replacesOrderID"] = replacing.id
            return self._ok(
                400,
                {
                    "orderRejectTransaction": reject,
                    "relatedTransactionIDs": [reject["id"]],
                    "errorCode": refused.reason,
                    "errorMessage": _MESSAGES.get(refused.reason, refused.reason),
                },
            )
        body: Json = {}
        if replacing is not None:
            body["orderCancelTransaction"] = self._cancel(
                replacing,
                batch,
                "CLIENT_REQUEST_REPLACED",
                replaced_by=str(int(self._next_id()) + 1),
            )
        order.id = self._next_id()
        body["orderCreateTransaction"] = self._txn(
            batch, f"{order.type}_ORDER", **self._order_fields(order)
        )
        self._orders[order.id] = order
        if order.client_id is not None:
            self._client_ids[order.client_id] = order.id
        start = len(batch.created)
        self._on_arrival(order, batch)
        own_cancel = (
            "orderCancelTransaction" if replacing is None else "replacingOrderCancelTransaction"
        )
        for txn in batch.created[start:]:
            if txn["type"] == "ORDER_FILL":
                body["orderFillTransaction"] = txn
            elif txn["type"] == "ORDER_CANCEL":
                body[own_cancel] = txn
        body["relatedTransactionIDs"] = [txn["id"] for txn in batch.created]
        reply = self._ok(201, body)
        location = f"/v3/accounts/{self.account_id}/orders/{order.id}"
        return dataclasses.replace(reply, headers={"Location": location})

    def _parse_order(self, request: Json, replacing: _Order | None) -> _Order:
        order_type = request.get("type", "MARKET")
        if order_type not in _ORDER_TYPES:
            raise _Refused("TYPE_INVALID")
        if replacing is not None and order_type != replacing.type:
            raise _Refused("TYPE_INVALID")
        name = request.get("instrument")
        if not name:
            raise _Refused("INSTRUMENT_MISSING")
        inst = self._instruments.get(name) if isinstance(name, str) else None
        if inst is None:
            raise _Refused("INSTRUMENT_UNKNOWN")
        units = self._decimal(request.get("units"), "UNITS_MISSING", "UNITS_INVALID")
        if units == 0:
            raise _Refused("UNITS_INVALID")
        if units != units.to_integral_value():
            raise _Refused("UNITS_PRECISION_EXCEEDED")
        if abs(units) > _MAX_UNITS:
            raise _Refused("UNITS_LIMIT_EXCEEDED")
        price = None
        if order_type != "MARKET":
            price = self._decimal(request.get("price"), "PRICE_MISSING", "PRICE_INVALID")
            if price <= 0:
                raise _Refused("PRICE_INVALID")
            if price != price.quantize(inst.tick, rounding=ROUND_HALF_EVEN):
                raise _Refused("PRICE_PRECISION_EXCEEDED")
        bound = None
        if request.get("priceBound") is not None and order_type in ("MARKET", "STOP"):
            bound = self._decimal(
                request["priceBound"], "PRICE_BOUND_INVALID", "PRICE_BOUND_INVALID"
            )
            if bound <= 0:
                raise _Refused("PRICE_BOUND_INVALID")
            if bound != bound.quantize(inst.tick, rounding=ROUND_HALF_EVEN):
                raise _Refused("PRICE_BOUND_PRECISION_EXCEEDED")
        tif = request.get("timeInForce", "FOK" if order_type == "MARKET" else "GTC")
        allowed = ("FOK", "IOC") if order_type == "MARKET" else _TIME_IN_FORCE
        if tif not in allowed:
            raise _Refused("TIME_IN_FORCE_INVALID")
        gtd_ms = None
        gtd_time = None
        now_ms = self._clock()
        if tif == "GTD":
            raw = request.get("gtdTime")
            if not isinstance(raw, str) or not raw:
                raise _Refused("TIME_IN_FORCE_GTD_TIMESTAMP_MISSING")
            try:
                gtd_ms = parse_time(raw)
            except ValueError:
                raise _Refused("TIME_IN_FORCE_GTD_TIMESTAMP_MISSING") from None
            if gtd_ms <= now_ms:
                raise _Refused("TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST")
            gtd_time = _timestamp(gtd_ms)
        elif tif == "GFD":
            day_end = (now_ms // 86_400_000) * 86_400_000 + 21 * 3_600_000
            gtd_ms = day_end if day_end > now_ms else day_end + 86_400_000
        fill = request.get("positionFill", "DEFAULT")
        if fill not in _POSITION_FILL:
            raise _Refused("ORDER_FILL_POSITION_ACTION_INVALID")
        trigger = request.get("triggerCondition", "DEFAULT")
        if trigger not in _TRIGGER_CONDITIONS:
            raise _Refused("TRIGGER_CONDITION_INVALID")
        ext = request.get("clientExtensions")
        trade_ext = request.get("tradeClientExtensions")
        for value in (ext, trade_ext):
            if value is not None and (
                not isinstance(value, dict)
                or not all(isinstance(v, str) and len(v) <= 128 for v in value.values())
            ):
                raise _Refused("CLIENT_ORDER_ID_INVALID")
        client_id = ext.get("id") if isinstance(ext, dict) else None
        if client_id is not None:
            if not client_id:
                raise _Refused("CLIENT_ORDER_ID_INVALID")
            owner = self._client_ids.get(client_id)
            if owner is not None and (replacing is None or owner != replacing.id):
                raise _Refused("CLIENT_ORDER_ID_ALREADY_EXISTS")
        return _Order(
            id="",
            type=order_type,
            instrument=inst.name,
            units=units,
            time_in_force=tif,
            position_fill=fill,
            create_time=self.now(),
            price=price,
            price_bound=bound,
            gtd_ms=gtd_ms,
            gtd_time=gtd_time,
            trigger_condition=trigger,
            client_extensions=dict(ext) if isinstance(ext, dict) else None,
            trade_client_extensions=dict(trade_ext) if isinstance(trade_ext, dict) else None,
            reason="CLIENT_ORDER" if replacing is None else "REPLACEMENT",
            replaces_order_id=None if replacing is None else replacing.id,
        )

    @staticmethod
    def _decimal(raw: Any, missing: str, invalid: str) -> Decimal:
        if raw is None or raw == "":
            raise _Refused(missing)
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise _Refused(invalid)
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise _Refused(invalid) from None
        if not value.is_finite():
            raise _Refused(invalid)
        return value

    def _order_fields(self, order: _Order) -> Json:
        """The order as its create transaction shows it (without id/type/time)."""
        fields: Json = {"instrument": order.instrument, "units": _units(order.units)}
        if order.price is not None:
            fields["price"] = str(order.price)
        if order.price_bound is not None:
            fields["priceBound"] = str(order.price_bound)
        fields["timeInForce"] = order.time_in_force
        if order.gtd_time is not None:
            fields["gtdTime"] = order.gtd_time
        fields["positionFill"] = order.position_fill
        if order.type != "MARKET":
            fields["triggerCondition"] = order.trigger_condition
        fields["reason"] = order.reason
        fields.update(order.extra)
        if order.client_extensions is not None:
            fields["clientExtensions"] = dict(order.client_extensions)
        if order.trade_client_extensions is not None:
            fields["tradeClientExtensions"] = dict(order.trade_client_extensions)
        if order.replaces_order_id is not None:
            fields["replacesOrderID"] = order.replaces_order_id
        return fields

    def _order_view(self, order: _Order) -> Json:
        view: Json = {"id": order.id, "createTime": order.create_time, "type": order.type}
        fields = self._order_fields(order)
        fields.pop("reason", None)
        view.update(fields)
        view["state"] = order.state
        if order.replaced_by_order_id is not None:
            view["replacedByOrderID"] = order.replaced_by_order_id
        view.update(order.done)
        return view

    def _get_orders(self, _route: list[str], params: dict[str, list[str]], _d: Json) -> Reply:
        state = params.get("state", ["PENDING"])[0]
        instrument = params.get("instrument", [None])[0]
        ids = {i for i in ",".join(params.get("ids", [])).split(",") if i}
        try:
            count = int(params.get("count", ["50"])[0])
            before = int(params.get("beforeID", ["0"])[0]) or None
        except ValueError:
            raise _BadRequest("Invalid value specified for 'count' or 'beforeID'") from None
        if not 1 <= count <= 500:
            raise _BadRequest("Invalid value specified for 'count'")
        selected = [
            o
            for o in reversed(self._orders.values())
            if state in ("ALL", o.state)
            and (instrument is None or o.instrument == instrument)
            and (not ids or o.id in ids)
            and (before is None or int(o.id) < before)
        ]
        return self._ok(200, {"orders": [self._order_view(o) for o in selected[:count]]})

    def _get_pending(self, _route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        pending = [o for o in reversed(self._orders.values()) if o.state == "PENDING"]
        return self._ok(200, {"orders": [self._order_view(o) for o in pending]})

    def _get_order(self, route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        order = self._find_order(route[1])
        if order is None:
            raise self._order_missing(route[1])
        return self._ok(200, {"order": self._order_view(order)})

    def _cancel_rejected(self, order: _Order | None, batch: _Batch) -> Reply:
        """The 404 a cancel or replace of an order that is not pending gets: an
        ORDER_CANCEL_REJECT transaction (it takes an id) with OANDA's error fields."""
        reject = self._txn(
            batch,
            "ORDER_CANCEL_REJECT",
            orderID=None if order is None else order.id,
            clientOrderID=None if order is None else order.client_id,
            rejectReason="ORDER_DOESNT_EXIST",
        )
        return self._ok(
            404,
            {
                "orderCancelRejectTransaction": reject,
                "relatedTransactionIDs": [reject["id"]],
                "errorCode": "ORDER_DOESNT_EXIST",
                "errorMessage": _MESSAGES["ORDER_DOESNT_EXIST"],
            },
        )

    def _put_cancel(self, route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        order = self._find_order(route[1])
        batch = _Batch(self.now())
        if order is None or order.state != "PENDING":
            return self._cancel_rejected(order, batch)
        cancel = self._cancel(order, batch, "CLIENT_REQUEST")
        return self._ok(
            200, {"orderCancelTransaction": cancel, "relatedTransactionIDs": [cancel["id"]]}
        )

    def _cancel(
        self, order: _Order, batch: _Batch, reason: str, replaced_by: str | None = None
    ) -> Json:
        txn = self._txn(
            batch,
            "ORDER_CANCEL",
            orderID=order.id,
            clientOrderID=order.client_id,
            reason=reason,
            replacedByOrderID=replaced_by,
        )
        if order.state == "PENDING":
            order.state = "CANCELLED"
            order.done.update({"cancellingTransactionID": txn["id"], "cancelledTime": txn["time"]})
        if replaced_by is not None:
            order.replaced_by_order_id = replaced_by
        return txn

    def _expire_due(self, batch: _Batch) -> None:
        now = self._clock()
        for order in list(self._orders.values()):
            if order.state == "PENDING" and order.gtd_ms is not None and order.gtd_ms <= now:
                self._cancel(order, batch, "TIME_IN_FORCE_EXPIRED")

    # matching ---------------------------------------------------------------

    def _triggered(self, order: _Order) -> bool:
        assert order.price is not None
        q = self._sim.quote(order.instrument)
        buy = order.units > 0
        condition = order.trigger_condition
        if condition == "DEFAULT":
            condition = "ASK" if buy else "BID"
        elif condition == "INVERSE":
            condition = "BID" if buy else "ASK"
        current = {"ASK": q.ask, "BID": q.bid, "MID": (q.bid + q.ask) / 2}[condition]
        if order.type == "STOP":
            return current >= order.price if buy else current <= order.price
        return current <= order.price if buy else current >= order.price

    def _on_arrival(self, order: _Order, batch: _Batch) -> None:
        immediate = order.time_in_force in ("FOK", "IOC")
        if order.type == "MARKET":
            self._execute(order, batch, resting=False)
            return
        if order.type == "LIMIT":
            if immediate:
                self._execute(order, batch, resting=False)
            elif self._triggered(order):
                self._execute(order, batch, resting=True)
            return
        if self._triggered(order):
            self._execute(order, batch, resting=False)
        elif immediate:
            self._cancel(order, batch, "TIME_IN_FORCE_EXPIRED")

    def _match_resting(self, instrument: str) -> None:
        for order in list(self._orders.values()):
            if (
                order.state != "PENDING"
                or order.instrument != instrument
                or order.queued
                or not self._triggered(order)
            ):
                continue
            if self._held:
                order.queued = True
                self._queued.append((order.id, self._sim.depth(instrument, self._depth)))
                continue
            batch = _Batch(self.now())
            self._execute(order, batch, resting=order.type == "LIMIT")

    def _execute(
        self,
        order: _Order,
        batch: _Batch,
        *,
        resting: bool,
        levels: tuple[list[tuple[Decimal, Decimal]], ...] | None = None,
        trade: _Trade | None = None,
    ) -> bool:
        """Fill ``order`` from the book if it can; returns whether it filled.

        ``resting``: a LIMIT that fills all or nothing and otherwise stays
        pending. Anything else that cannot fill is cancelled.
        """
        units = order.units
        if order.position_fill == "REDUCE_ONLY" and trade is None:
            net = self._net(order.instrument)
            if net == 0 or _sign(net) == _sign(units):
                self._cancel(order, batch, "POSITION_SIZE_EXCEEDED")
                return False
            units = _sign(units) * min(abs(units), abs(net))
        bids, asks = (
            levels if levels is not None else self._sim.depth(order.instrument, self._depth)
        )
        book = asks if units > 0 else bids
        limit = order.price if order.type == "LIMIT" else order.price_bound
        wanted = abs(units)
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = wanted
        bounded = False
        for price, quantity in book:
            if remaining <= 0:
                break
            if limit is not None and (price > limit if units > 0 else price < limit):
                bounded = True
                break
            take = min(quantity, remaining)
            fills.append((price, take))
            remaining -= take
        got = wanted - remaining
        partial = order.time_in_force == "IOC"
        if got < wanted:
            if resting:
                return False
            if not partial or got == 0:
                self._cancel(
                    order, batch, "BOUNDS_VIOLATION" if bounded else "INSUFFICIENT_LIQUIDITY"
                )
                return False
        signed = Decimal(_sign(units)) * got
        self._fill(order, signed, fills, batch, trade)
        if got < wanted:
            self._cancel(order, batch, "BOUNDS_VIOLATION" if bounded else "INSUFFICIENT_LIQUIDITY")
        return True

    def _fill(
        self,
        order: _Order,
        signed: Decimal,
        fills: list[tuple[Decimal, Decimal]],
        batch: _Batch,
        target: _Trade | None,
    ) -> None:
        inst = self._instruments[order.instrument]
        quantity = abs(signed)
        vwap = sum((p * q for p, q in fills), Decimal(0)) / quantity
        vwap = vwap.quantize(inst.tick / 10, rounding=ROUND_HALF_EVEN)
        if vwap == vwap.quantize(inst.tick):
            vwap = vwap.quantize(inst.tick)
        conversion = self._conversion(inst.quote)
        fill_id = self._next_id()
        time = batch.time
        remaining = signed
        closed: list[Json] = []
        reduced: Json | None = None
        pl_total = Decimal(0)
        financing_total = Decimal(0)
        candidates = (
            [target]
            if target is not None
            else [
                t
                for t in self._trades.values()
                if t.instrument == order.instrument
                and t.is_open
                and _sign(t.current_units) == -_sign(signed)
            ]
        )
        for trade in candidates:
            if remaining == 0:
                break
            size = min(abs(trade.current_units), abs(remaining))
            direction = _sign(trade.current_units)
            pl = ((vwap - trade.price) * size * direction * conversion).quantize(
                _MONEY, rounding=ROUND_HALF_EVEN
            )
            trade.current_units -= direction * size
            trade.realized_pl += pl
            trade.closed_units += size
            trade.close_value += vwap * size
            trade.closing_ids.append(fill_id)
            pl_total += pl
            entry = {
                "tradeID": trade.id,
                "units": _units(Decimal(-direction) * size),
                "price": str(vwap),
                "realizedPL": _money(pl),
                "financing": "0.0000",
                "guaranteedExecutionFee": "0.0000",
                "halfSpreadCost": "0.0000",
            }
            if trade.is_open:
                reduced = entry
            else:
                trade.close_time = time
                closed.append(entry)
            remaining -= Decimal(-direction) * size
        opened: Json | None = None
        margin = Decimal(0)
        if remaining != 0:
            margin = self._margin(order.instrument, remaining, vwap)
            new = _Trade(
                id=fill_id,
                instrument=order.instrument,
                price=vwap,
                open_time=time,
                initial_units=remaining,
                current_units=remaining,
                initial_margin=margin,
                client_extensions=order.trade_client_extensions,
            )
            self._trades[new.id] = new
            opened = {
                "tradeID": new.id,
                "units": _units(remaining),
                "price": str(vwap),
                "guaranteedExecutionFee": "0.0000",
                "halfSpreadCost": "0.0000",
                "initialMarginRequired": _money(margin),
            }
            if order.trade_client_extensions is not None:
                opened["clientExtensions"] = dict(order.trade_client_extensions)
        self._balance += pl_total + financing_total
        self._pl += pl_total
        self._last_fill_time = time
        reason = {
            "MARKET": "MARKET_ORDER",
            "LIMIT": "LIMIT_ORDER",
            "STOP": "STOP_ORDER",
            "MARKET_IF_TOUCHED": "MARKET_IF_TOUCHED_ORDER",
        }[order.type]
        if "tradeClose" in order.extra:
            reason = "MARKET_ORDER_TRADE_CLOSE"
        elif "longPositionCloseout" in order.extra or "shortPositionCloseout" in order.extra:
            reason = "MARKET_ORDER_POSITION_CLOSEOUT"
        price_view = self._price(order.instrument, with_type=True)
        price_view.pop("instrument", None)
        price_view.pop("status", None)
        price_view.pop("tradeable", None)
        txn = self._txn(
            batch,
            "ORDER_FILL",
            orderID=order.id,
            clientOrderID=order.client_id,
            instrument=order.instrument,
            units=_units(signed),
            price=str(vwap),
            fullVWAP=str(vwap),
            fullPrice=price_view,
            reason=reason,
            pl=_money(pl_total),
            financing=_money(financing_total),
            commission="0.0000",
            guaranteedExecutionFee="0.0000",
            accountBalance=_money(self._balance),
            halfSpreadCost="0.0000",
            gainQuoteHomeConversionFactor=str(conversion.quantize(Decimal("1e-10")).normalize()),
            lossQuoteHomeConversionFactor=str(conversion.quantize(Decimal("1e-10")).normalize()),
            tradeOpened=opened,
            tradeReduced=reduced,
            tradesClosed=closed or None,
        )
        assert txn["id"] == fill_id
        order.state = "FILLED"
        order.done.update({"fillingTransactionID": fill_id, "filledTime": time})
        if opened is not None:
            order.done["tradeOpenedID"] = fill_id
        if reduced is not None:
            order.done["tradeReducedID"] = reduced["tradeID"]
        if closed:
            order.done["tradeClosedIDs"] = [c["tradeID"] for c in closed]

    # positions and trades ------------------------------------------------

    def _margin(self, instrument: str, units: Decimal, price: Decimal | None = None) -> Decimal:
        return self._value(instrument, units, price) * _MARGIN_RATE

    def _value(self, instrument: str, units: Decimal, price: Decimal | None = None) -> Decimal:
        inst = self._instruments[instrument]
        at = self._mid(instrument) if price is None else price
        return abs(units) * at * self._conversion(inst.quote)

    def _unrealized(self, trade: _Trade) -> Decimal:
        inst = self._instruments[trade.instrument]
        bid, ask = self._sim.quote(trade.instrument).bid, self._sim.quote(trade.instrument).ask
        close = bid if trade.current_units > 0 else ask
        return (close - trade.price) * trade.current_units * self._conversion(inst.quote)

    def _traded(self) -> list[str]:
        return [
            n for n in self._instruments if any(t.instrument == n for t in self._trades.values())
        ]

    def _position_view(self, instrument: str) -> Json:
        trades = [t for t in self._trades.values() if t.instrument == instrument]
        view: Json = {"instrument": instrument}
        sides: dict[str, Json] = {}
        total_unrealized = Decimal(0)
        total_margin = Decimal(0)
        total_pl = Decimal(0)
        total_financing = Decimal(0)
        for side, sign in (("long", 1), ("short", -1)):
            mine = [t for t in trades if _sign(t.initial_units) == sign]
            live = [t for t in mine if t.is_open]
            units = sum((t.current_units for t in live), Decimal(0))
            pl = sum((t.realized_pl for t in mine), Decimal(0))
            financing = sum((t.financing for t in mine), Decimal(0))
            unrealized = sum((self._unrealized(t) for t in live), Decimal(0))
            entry: Json = {"units": _units(units)}
            if live:
                inst = self._instruments[instrument]
                average = sum((t.price * abs(t.current_units) for t in live), Decimal(0)) / abs(
                    units
                )
                entry["averagePrice"] = str(average.quantize(inst.tick / 10).normalize())
                entry["tradeIDs"] = [t.id for t in live]
            entry.update(
                {
                    "pl": _money(pl),
                    "resettablePL": _money(pl),
                    "financing": _money(financing),
                    "guaranteedExecutionFees": "0.0000",
                    "unrealizedPL": _money(unrealized),
                }
            )
            sides[side] = entry
            total_unrealized += unrealized
            total_pl += pl
            total_financing += financing
            total_margin += self._margin(instrument, units) if units else Decimal(0)
        view.update(
            {
                "pl": _money(total_pl),
                "resettablePL": _money(total_pl),
                "financing": _money(total_financing),
                "commission": "0.0000",
                "guaranteedExecutionFees": "0.0000",
                "unrealizedPL": _money(total_unrealized),
                "marginUsed": _money(total_margin),
                **sides,
            }
        )
        return view

    def _get_open_positions(self, _route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        names = [n for n in self._instruments if self._net(n) != 0]
        return self._ok(200, {"positions": [self._position_view(n) for n in names]})

    def _get_positions(self, _route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        return self._ok(200, {"positions": [self._position_view(n) for n in self._traded()]})

    def _get_position(self, route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        if route[1] not in self._instruments:
            raise _NotFound(
                {"errorMessage": f"Invalid value specified for 'instrument': {route[1]}"}
            )
        return self._ok(200, {"position": self._position_view(route[1])})

    def _put_position_close(self, route: list[str], _p: dict[str, list[str]], data: Json) -> Reply:
        instrument = route[1]
        if instrument not in self._instruments:
            raise _NotFound(
                {"errorMessage": f"Invalid value specified for 'instrument': {instrument}"}
            )
        requested = {side: data.get(f"{side}Units") for side in ("long", "short")}
        if all(v is None for v in requested.values()):
            requested = {"long": "ALL", "short": "ALL"}
        batch = _Batch(self.now())
        body: Json = {}
        plans = []
        for side, sign in (("long", 1), ("short", -1)):
            raw = requested[side]
            if raw is None or raw == "NONE":
                continue
            held = sum(
                (
                    t.current_units
                    for t in self._trades.values()
                    if t.instrument == instrument and _sign(t.current_units) == sign
                ),
                Decimal(0),
            )
            if raw == "ALL":
                size = abs(held)
            else:
                try:
                    size = Decimal(str(raw))
                except InvalidOperation:
                    size = Decimal(-1)
                if size <= 0 or size != size.to_integral_value() or size > abs(held):
                    return self._close_refused(
                        f"{side}Units", "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE"
                    )
            if size == 0:
                return self._close_refused(f"{side}Units", "CLOSEOUT_POSITION_DOESNT_EXIST")
            plans.append((side, sign, size))
        if not plans:
            return self._close_refused("longUnits", "CLOSEOUT_POSITION_DOESNT_EXIST")
        for side, sign, size in plans:
            units = Decimal(-sign) * size
            order = _Order(
                id=self._next_id(),
                type="MARKET",
                instrument=instrument,
                units=units,
                time_in_force="FOK",
                position_fill="REDUCE_ONLY",
                create_time=batch.time,
                reason="POSITION_CLOSEOUT",
                extra={
                    f"{side}PositionCloseout": {
                        "instrument": instrument,
                        "units": "ALL" if requested[side] == "ALL" else _units(size),
                    }
                },
            )
            start = len(batch.created)
            body[f"{side}OrderCreateTransaction"] = self._txn(
                batch, "MARKET_ORDER", **self._order_fields(order)
            )
            self._orders[order.id] = order
            self._execute(order, batch, resting=False)
            for txn in batch.created[start + 1 :]:
                if txn["type"] == "ORDER_FILL":
                    body[f"{side}OrderFillTransaction"] = txn
                elif txn["type"] == "ORDER_CANCEL":
                    body[f"{side}OrderCancelTransaction"] = txn
        body["relatedTransactionIDs"] = [t["id"] for t in batch.created]
        return self._ok(200, body)

    def _close_refused(self, field_name: str, code: str) -> Reply:
        return self._ok(
            400,
            {
                "errorCode": code,
                "errorMessage": f"Invalid value specified for '{field_name}' ({code})",
            },
        )

    def _trade_view(self, trade: _Trade) -> Json:
        view: Json = {
            "id": trade.id,
            "instrument": trade.instrument,
            "price": str(trade.price),
            "openTime": trade.open_time,
            "state": "OPEN" if trade.is_open else "CLOSED",
            "initialUnits": _units(trade.initial_units),
            "initialMarginRequired": _money(trade.initial_margin),
            "currentUnits": _units(trade.current_units),
            "realizedPL": _money(trade.realized_pl),
            "financing": _money(trade.financing),
        }
        if trade.is_open:
            view["unrealizedPL"] = _money(self._unrealized(trade))
            view["marginUsed"] = _money(self._margin(trade.instrument, trade.current_units))
        if trade.closed_units:
            inst = self._instruments[trade.instrument]
            average = trade.close_value / trade.closed_units
            view["averageClosePrice"] = str(average.quantize(inst.tick / 10).normalize())
            view["closingTransactionIDs"] = list(trade.closing_ids)
        if trade.close_time is not None:
            view["closeTime"] = trade.close_time
        if trade.client_extensions is not None:
            view["clientExtensions"] = dict(trade.client_extensions)
        return view

    def _find_trade(self, specifier: str) -> _Trade | None:
        if specifier.startswith("@"):
            for trade in self._trades.values():
                ext = trade.client_extensions or {}
                if ext.get("id") == specifier[1:]:
                    return trade
            return None
        return self._trades.get(specifier)

    def _get_trades(self, _route: list[str], params: dict[str, list[str]], _d: Json) -> Reply:
        state = params.get("state", ["OPEN"])[0]
        instrument = params.get("instrument", [None])[0]
        ids = {i for i in ",".join(params.get("ids", [])).split(",") if i}
        count = (
            int(params.get("count", ["50"])[0]) if params.get("count", ["50"])[0].isdigit() else 50
        )
        selected = [
            t
            for t in reversed(self._trades.values())
            if (state == "ALL" or (state == "OPEN") == t.is_open)
            and (instrument is None or t.instrument == instrument)
            and (not ids or t.id in ids)
        ]
        return self._ok(200, {"trades": [self._trade_view(t) for t in selected[:count]]})

    def _get_open_trades(self, _route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        live = [t for t in reversed(self._trades.values()) if t.is_open]
        return self._ok(200, {"trades": [self._trade_view(t) for t in live]})

    def _get_trade(self, route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        trade = self._find_trade(route[1])
        if trade is None:
            raise _NotFound({"errorMessage": "The Trade specified does not exist"})
        return self._ok(200, {"trade": self._trade_view(trade)})

    def _put_trade_close(self, route: list[str], _p: dict[str, list[str]], data: Json) -> Reply:
        trade = self._find_trade(route[1])
        if trade is None or not trade.is_open:
            raise _NotFound(
                {
                    "errorCode": "TRADE_DOESNT_EXIST",
                    "errorMessage": "The Trade specified does not exist",
                    "lastTransactionID": self._transactions[-1]["id"],
                }
            )
        raw = data.get("units", "ALL")
        if raw == "ALL":
            size = abs(trade.current_units)
        else:
            try:
                size = Decimal(str(raw))
            except InvalidOperation:
                size = Decimal(-1)
            if size <= 0 or size != size.to_integral_value() or size > abs(trade.current_units):
                return self._close_refused("units", "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE")
        batch = _Batch(self.now())
        order = _Order(
            id=self._next_id(),
            type="MARKET",
            instrument=trade.instrument,
            units=Decimal(-_sign(trade.current_units)) * size,
            time_in_force="FOK",
            position_fill="REDUCE_ONLY",
            create_time=batch.time,
            reason="TRADE_CLOSE",
            extra={
                "tradeClose": {
                    "tradeID": trade.id,
                    "units": "ALL" if raw == "ALL" else _units(size),
                }
            },
        )
        body: Json = {
            "orderCreateTransaction": self._txn(batch, "MARKET_ORDER", **self._order_fields(order))
        }
        self._orders[order.id] = order
        self._execute(order, batch, resting=False, trade=trade)
        for txn in batch.created[1:]:
            if txn["type"] == "ORDER_FILL":
                body["orderFillTransaction"] = txn
            elif txn["type"] == "ORDER_CANCEL":
                body["orderCancelTransaction"] = txn
        body["relatedTransactionIDs"] = [t["id"] for t in batch.created]
        return self._ok(200, body)

    # transactions -----------------------------------------------------------

    def _id_param(self, params: dict[str, list[str]], name: str) -> int:
        values = params.get(name)
        if not values or not values[0].isdigit():
            raise _BadRequest(f"Invalid value specified for '{name}'")
        return int(values[0])

    def _types(self, params: dict[str, list[str]]) -> set[str]:
        return {t for t in ",".join(params.get("type", [])).split(",") if t}

    def _get_since(self, _route: list[str], params: dict[str, list[str]], _d: Json) -> Reply:
        since = self._id_param(params, "id")
        types = self._types(params)
        selected = [
            dict(t)
            for t in self._transactions
            if int(t["id"]) > since and (not types or t["type"] in types)
        ]
        return self._ok(200, {"transactions": selected})

    def _get_range(self, _route: list[str], params: dict[str, list[str]], _d: Json) -> Reply:
        low = self._id_param(params, "from")
        high = self._id_param(params, "to")
        types = self._types(params)
        selected = [
            dict(t)
            for t in self._transactions
            if low <= int(t["id"]) <= high and (not types or t["type"] in types)
        ]
        return self._ok(200, {"transactions": selected})

    def _get_transaction(self, route: list[str], _p: dict[str, list[str]], _d: Json) -> Reply:
        wanted = route[1]
        for txn in self._transactions:
            if txn["id"] == wanted:
                return self._ok(200, {"transaction": dict(txn)})
        raise _NotFound({"errorMessage": "The transaction ID specified does not exist"})

    def _get_transactions(self, _route: list[str], params: dict[str, list[str]], _d: Json) -> Reply:
        try:
            start = parse_time(params["from"][0]) if "from" in params else 0
            end = parse_time(params["to"][0]) if "to" in params else self._clock()
            size = int(params.get("pageSize", ["100"])[0])
        except ValueError:
            raise _BadRequest("Invalid value specified for 'from', 'to' or 'pageSize'") from None
        if not 1 <= size <= 1000:
            raise _BadRequest("Invalid value specified for 'pageSize'")
        types = self._types(params)
        ids = [
            int(t["id"])
            for t in self._transactions
            if start <= parse_time(t["time"]) <= end and (not types or t["type"] in types)
        ]
        pages = [
            f"/v3/accounts/{self.account_id}/transactions/idrange?from={ids[i]}&to={ids[min(i + size, len(ids)) - 1]}"
            for i in range(0, len(ids), size)
        ]
        return self._ok(
            200,
            {
                "from": _timestamp(start),
                "to": _timestamp(end),
                "pageSize": size,
                "count": len(ids),
                "pages": pages,
            },
        )


def _not_allowed() -> Reply:
    return Reply(405, {"errorMessage": "The method is not allowed for the requested resource"})


def _shape(route: list[str]) -> tuple[str, ...]:
    """A route under ``/v3/accounts/{id}/`` with its variable segments replaced by ``*``."""
    if not route:
        return ()
    head = route[0]
    if head in ("orders", "trades", "positions") and len(route) >= 2:
        return (head, "*", *route[2:])
    if (
        head == "transactions"
        and len(route) == 2
        and route[1] not in ("sinceid", "idrange", "stream")
    ):
        return (head, "*")
    return tuple(route)


_Handler = Callable[[OandaExchange, list[str], dict[str, list[str]], Json], Reply]

_ROUTES: dict[tuple[str, ...], _Handler] = {
    ("GET",): OandaExchange._get_account,
    ("GET", "summary"): OandaExchange._get_summary,
    ("GET", "instruments"): OandaExchange._get_instruments,
    ("GET", "pricing"): OandaExchange._get_pricing,
    ("POST", "orders"): OandaExchange._post_order,
    ("GET", "orders"): OandaExchange._get_orders,
    ("GET", "pendingOrders"): OandaExchange._get_pending,
    ("GET", "orders", "*"): OandaExchange._get_order,
    ("PUT", "orders", "*"): OandaExchange._put_order,
    ("PUT", "orders", "*", "cancel"): OandaExchange._put_cancel,
    ("GET", "openPositions"): OandaExchange._get_open_positions,
    ("GET", "positions"): OandaExchange._get_positions,
    ("GET", "positions", "*"): OandaExchange._get_position,
    ("PUT", "positions", "*", "close"): OandaExchange._put_position_close,
    ("GET", "openTrades"): OandaExchange._get_open_trades,
    ("GET", "trades"): OandaExchange._get_trades,
    ("GET", "trades", "*"): OandaExchange._get_trade,
    ("PUT", "trades", "*", "close"): OandaExchange._put_trade_close,
    ("GET", "transactions"): OandaExchange._get_transactions,
    ("GET", "transactions", "sinceid"): OandaExchange._get_since,
    ("GET", "transactions", "idrange"): OandaExchange._get_range,
    ("GET", "transactions", "*"): OandaExchange._get_transaction,
}


def endpoint_name(method: str, path: str) -> str:
    """A request's endpoint as :meth:`OandaVenue.calls` counts it: ``"POST orders"``,
    ``"PUT orders/{id}/cancel"``, ``"GET transactions/stream"``, ``"GET accounts"``."""
    parts = [part for part in path.split("/") if part]
    if parts[:2] != ["v3", "accounts"]:
        return f"{method} {path}"
    if len(parts) == 2:
        return f"{method} accounts"
    shape = _shape(parts[3:])
    names = {
        "orders": "{id}",
        "trades": "{id}",
        "positions": "{instrument}",
        "transactions": "{id}",
    }
    words = [names.get(shape[0], "*") if word == "*" else word for word in shape]
    return f"{method} {'/'.join(words) or 'account'}"
