"""The local TWS's state: one IB account, its contracts, orders, executions and positions.

Pure like the other fakes' exchanges: no sockets, no threads of its own, no
wall clock (stamps come from the injected millisecond clock), no global
random state. The server hands it each decoded request with the asking
connection's client id and writes back the :class:`Message` list it
returns; every message says whom it is for (:data:`REPLY`, a client id,
or :data:`ACCOUNT_SUBSCRIBERS`) and what kind it is (the fault knobs hold,
duplicate or drop by kind).

**Prices and matching** come from :class:`tradenode.sim.MatchingSimulator`
(one instrument per contract, short selling allowed, no simulator
commission): MKT takes the synthetic book across its levels (one execution
per level), LMT rests and, when a price move passes through it, fills at
most one level's quantity per move (partial fills), STP/STP LMT trigger on
the last price, TRAIL trails by ``auxPrice`` (or ``trailingPercent`` of
the price at placement), MIT/LIT trigger when the price comes to their
``auxPrice`` and then execute as MKT/LMT. A stop or if-touched order whose
trigger the market has already reached is executed at once as IB does (the
simulator would refuse it).
TIFs DAY, GTC, IOC, FOK; OPG is accepted and treated as DAY (no opening
auction here); GTD expires at ``goodTillDate``.

**Money** (documented choices): IB's fixed-rate commissions, charged per
execution with the order's minimum topped up on its first execution
(stocks 0.005 USD a share, minimum 1; FX 0.2 bp of the value, minimum 2;
futures 0.85 a contract; options 0.65 a contract, minimum 1). As in IB's
books, a position's average cost includes the commissions paid to open it
and a closing execution's realizedPNL is net of its own. Stocks, options
and FX pay their notional in cash; futures settle only realized P/L and
commissions. Everything is in USD (EUR.USD positions are counted
in EUR units with a USD value). Margin is a flat 25 % (initial) and 20 %
(maintenance) of the gross position value.

**Ids**: order ids are per client id, must be above any id the client used
before (else error 103), and ``nextValidId`` answers one above the highest
seen; permIds are global; execution ids have IB's shape
``0000e0d5.6576a2b4.01.01``, and a correction (:meth:`IbkrExchange.correct_execution`)
is the same execution with the digits after the final period incremented,
as IB documents.

**Queries**: reqOpenOrders lists the asking client's open orders,
reqAllOpenOrders everyone's; reqExecutions every execution of the session
(not only today's) matching the filter (clientId 0 = any, acctCode, time
at or after ``yyyymmdd-hh:mm:ss`` UTC or ``yyyymmdd hh:mm:ss <zone>``,
symbol, secType, exchange, side), each with its commissionReport;
reqCompletedOrders every finished order of any client. reqAccountSummary
and reqAccountUpdates(Multi) answer the values listed in
``_account_values``; cancel requests for them need no answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tradenode.messages._enums import OrderType, Side, TimeInForce
from tradenode.sim import (
    InstrumentSpec,
    MatchingSimulator,
    SimAccepted,
    SimAmended,
    SimCanceled,
    SimConfig,
    SimEvent,
    SimExpired,
    SimFill,
    SimRejectCode,
    SimRejected,
)
from tradenode.testing.venues._ibkr_codec import (
    UNSET_DOUBLE,
    ContractFields,
    IbkrProtocolError,
    In,
    Out,
    PlaceOrder,
    Reader,
    fmt,
    parse_place_order,
)

__all__ = [
    "ACCOUNT_SUBSCRIBERS",
    "DEFAULT_IBKR_ACCOUNT",
    "POSITION_SUBSCRIBERS",
    "REPLY",
    "IbkrContract",
    "IbkrExchange",
    "Message",
    "default_ibkr_contracts",
]

DEFAULT_IBKR_ACCOUNT = "DU1234567"
REPLY = "reply"
ACCOUNT_SUBSCRIBERS = "account"
POSITION_SUBSCRIBERS = "positions"
_VERSION_FA_PROFILE_DESUPPORT = 177
_VERSION_PENDING_PRICE_REVISION = 178
_MONEY = Decimal("0.01")
_CENTS = Decimal("0.0001")
_INITIAL_MARGIN = Decimal("0.25")
_MAINT_MARGIN = Decimal("0.20")
_DEPTH_LEVELS = 20  # a market order for 20 levels' quantity fills whole, as IB's do

Build = Callable[[int], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing message: for whom, what kind (for the fault knobs), its fields per version."""

    to: str | int
    kind: str
    build: Build
    order: str | None = None
    """``"<clientId>/<orderId>"`` of the order an unsolicited message is about."""


def _fixed(fields: Sequence[object]) -> Build:
    frozen = [fmt(value) for value in fields]
    return lambda _version: frozen


@dataclass(frozen=True, slots=True)
class IbkrContract:
    """One tradable contract with what ``contractDetails`` says about it."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    min_tick: Decimal
    size_increment: Decimal
    initial_price: Decimal
    level_quantity: Decimal
    primary_exchange: str = ""
    last_trade: str = ""
    strike: Decimal | None = None
    right: str = ""
    multiplier: str = ""
    long_name: str = ""
    valid_exchanges: str = ""
    market_name: str = ""
    time_zone: str = "US/Eastern"

    @property
    def sim_symbol(self) -> str:
        return str(self.con_id)

    @property
    def factor(self) -> Decimal:
        return Decimal(self.multiplier) if self.multiplier else Decimal(1)

    def fields(self, *, exchange: str | None = None) -> list[object]:
        """conId, symbol, secType, lastTrade, strike, right, multiplier, exchange, currency,
        localSymbol, tradingClass: the eleven fields most messages carry."""
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.last_trade,
            fmt(self.strike) if self.strike is not None else "0",
            self.right,
            self.multiplier,
            self.exchange if exchange is None else exchange,
            self.currency,
            self.local_symbol,
            self.trading_class,
        ]

    def matches(self, wanted: ContractFields) -> bool:
        """Whether a request's partial contract names this one (IB's contract search)."""
        if wanted.con_id:
            return wanted.con_id == self.con_id
        checks = [
            (wanted.symbol, self.symbol),
            (wanted.sec_type, self.sec_type),
            (wanted.currency, self.currency),
            (wanted.local_symbol, self.local_symbol),
            (wanted.trading_class, self.trading_class),
            (wanted.right[:1].upper() if wanted.right else "", self.right[:1]),
            (wanted.multiplier, self.multiplier),
        ]
        if any(asked and asked.upper() != have.upper() for asked, have in checks):
            return False
        if wanted.last_trade and not self.last_trade.startswith(wanted.last_trade):
            return False
        if wanted.strike is not None and self.strike != wanted.strike:
            return False
        exchanges = {self.exchange, self.primary_exchange, *self.valid_exchanges.split(",")}
        return not wanted.exchange or wanted.exchange in exchanges


def default_ibkr_contracts() -> tuple[IbkrContract, ...]:
    """A stock, a second stock, an FX pair, a future and an option (fixed conIds)."""
    return (
        IbkrContract(
            con_id=265598,
            symbol="AAPL",
            sec_type="STK",
            exchange="SMART",
            primary_exchange="NASDAQ",
            currency="USD",
            local_symbol="AAPL",
            trading_class="NMS",
            min_tick=Decimal("0.01"),
            size_increment=Decimal(1),
            initial_price=Decimal("190.00"),
            level_quantity=Decimal(100),
            long_name="APPLE INC",
            valid_exchanges="SMART,NASDAQ,NYSE,ARCA,BATS,IEX",
            market_name="NMS",
        ),
        IbkrContract(
            con_id=272093,
            symbol="MSFT",
            sec_type="STK",
            exchange="SMART",
            primary_exchange="NASDAQ",
            currency="USD",
            local_symbol="MSFT",
            trading_class="NMS",
            min_tick=Decimal("0.01"),
            size_increment=Decimal(1),
            initial_price=Decimal("420.00"),
            level_quantity=Decimal(100),
            long_name="MICROSOFT CORP",
            valid_exchanges="SMART,NASDAQ,NYSE,ARCA,BATS,IEX",
            market_name="NMS",
        ),
        IbkrContract(
            con_id=12087792,
            symbol="EUR",
            sec_type="CASH",
            exchange="IDEALPRO",
            currency="USD",
            local_symbol="EUR.USD",
            trading_class="EUR.USD",
            min_tick=Decimal("0.00005"),
            size_increment=Decimal(1),
            initial_price=Decimal("1.08000"),
            level_quantity=Decimal(100000),
            long_name="European Monetary Union Euro",
            valid_exchanges="IDEALPRO",
            market_name="EUR.USD",
        ),
        IbkrContract(
            con_id=637533641,
            symbol="ES",
            sec_type="FUT",
            exchange="CME",
            currency="USD",
            local_symbol="ESZ6",
            trading_class="ES",
            last_trade="20261218",
            multiplier="50",
            min_tick=Decimal("0.25"),
            size_increment=Decimal(1),
            initial_price=Decimal("5000.00"),
            level_quantity=Decimal(5),
            long_name="E-mini S&P 500",
            valid_exchanges="CME,QBALGO",
            market_name="ES",
        ),
        IbkrContract(
            con_id=722345871,
            symbol="AAPL",
            sec_type="OPT",
            exchange="SMART",
            currency="USD",
            local_symbol="AAPL  261218C00200000",
            trading_class="AAPL",
            last_trade="20261218",
            strike=Decimal(200),
            right="C",
            multiplier="100",
            min_tick=Decimal("0.01"),
            size_increment=Decimal(1),
            initial_price=Decimal("5.00"),
            level_quantity=Decimal(10),
            long_name="APPLE INC",
            valid_exchanges="SMART,CBOE,AMEX,ISE,PHLX",
            market_name="AAPL",
        ),
    )


_ORDER_TYPES = {
    "MKT": OrderType.MARKET,
    "LMT": OrderType.LIMIT,
    "STP": OrderType.STOP,
    "STP LMT": OrderType.STOP_LIMIT,
    "TRAIL": OrderType.TRAILING_STOP,
    "MIT": OrderType.MARKET_IF_TOUCHED,
    "LIT": OrderType.LIMIT_IF_TOUCHED,
}
_LIMITED = frozenset({"LMT", "STP LMT", "LIT"})
"""Order types with a limit price (``lmtPrice``)."""
_TRIGGERED = frozenset({"STP", "STP LMT", "MIT", "LIT"})
"""Order types whose trigger price is ``auxPrice`` (TRAIL's auxPrice is its trailing amount)."""
_CONDITIONAL = _TRIGGERED | {"TRAIL"}
"""Order types that wait (PreSubmitted) for their trigger."""
_TIFS = {
    "DAY": TimeInForce.DAY,
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "OPG": TimeInForce.DAY,
    "GTD": TimeInForce.GTD,
    "": TimeInForce.DAY,
}


@dataclass(slots=True)
class _Order:
    client_id: int
    order_id: int
    perm_id: int
    contract: IbkrContract
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    order_ref: str
    account: str
    outside_rth: bool
    trail_stop_price: Decimal | None
    trailing_percent: Decimal | None
    good_till_date: str
    status: str = "PreSubmitted"
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    last_fill_price: Decimal = Decimal(0)
    commission_charged: Decimal = Decimal(0)
    done_ms: int = 0

    @property
    def key(self) -> str:
        return f"{self.client_id}/{self.order_id}"

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled if self.status not in _DONE else Decimal(0)

    @property
    def avg_price(self) -> Decimal:
        return self.notional / self.filled if self.filled else Decimal(0)

    @property
    def is_open(self) -> bool:
        return self.status not in _DONE


_DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass(frozen=True, slots=True)
class _Execution:
    exec_id: str
    order: _Order
    side: str
    shares: Decimal
    price: Decimal
    time_ms: int
    cum_qty: Decimal
    avg_price: Decimal
    commission: Decimal
    realized_pnl: Decimal | None
    liquidity: int


@dataclass(slots=True)
class _Holding:
    position: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    open_fees: Decimal = Decimal(0)
    """The commissions inside ``avg_price`` (paid to open what is still open)."""


@dataclass(slots=True)
class _Refusal:
    code: int
    text: str


class IbkrExchange:
    """One IB account behind the TWS protocol: see the module docstring."""

    def __init__(
        self,
        *,
        account: str = DEFAULT_IBKR_ACCOUNT,
        contracts: Iterable[IbkrContract] | None = None,
        cash: Decimal = Decimal(1_000_000),
        seed: int = 0,
        clock: Callable[[], int],
        spread_bps: Decimal = Decimal(0),
    ) -> None:
        if not account or "," in account:
            raise ValueError(f"account={account!r}: one account id, without commas")
        self.account = account
        self.lock = threading.RLock()
        self._clock = clock
        self.contracts: dict[int, IbkrContract] = {
            contract.con_id: contract for contract in contracts or default_ibkr_contracts()
        }
        specs = [
            InstrumentSpec(
                symbol=contract.sim_symbol,
                base_asset=f"C{contract.con_id}",
                quote_asset="USD",
                initial_price=contract.initial_price,
                tick_size=contract.min_tick,
                lot_size=contract.size_increment,
                min_quantity=contract.size_increment,
                min_notional=Decimal(0),
                spread_bps=spread_bps,
                volatility_bps=Decimal(5),
                level_quantity=contract.level_quantity,
            )
            for contract in self.contracts.values()
        ]
        self.sim = MatchingSimulator(
            SimConfig(
                instruments=tuple(specs),
                balances={"USD": Decimal(10) ** 15},
                depth_levels=_DEPTH_LEVELS,
                level_quantity=Decimal(1),
                allow_short=True,
            ),
            seed=seed,
            clock=lambda: self._clock() * 1_000_000,
        )
        self._cash = Decimal(cash)
        self._holdings: dict[int, _Holding] = {}
        self._orders: dict[str, _Order] = {}
        self._highest_id: dict[int, int] = {}
        self._next_valid_id = 1
        self._next_perm_id = 1_711_880_000
        self._exec_seq = 0
        self._executions: list[_Execution] = []
        self._submissions: dict[str, int] = {}
        self._placements: dict[str, int] = {}
        self._refusals: list[_Refusal] = []
        self._malformed = 0

    # ----------------------------------------------------------- requests

    def handle(self, client_id: int, version: int, fields: Sequence[str]) -> list[Message]:
        """One decoded request from client ``client_id``: the messages it causes.

        Raises :class:`IbkrProtocolError` for a malformed message.
        """
        if not fields:
            raise IbkrProtocolError("an empty message")
        try:
            message_id = int(fields[0])
        except ValueError:
            raise IbkrProtocolError(f"not a message id: {fields[0]!r}") from None
        handler = _HANDLERS.get(message_id)
        with self.lock:
            if handler is None:
                return []
            return handler(self, client_id, version, fields)

    def greet(self, client_id: int) -> list[Message]:
        """What TWS sends after startApi: accounts, the next id, the farm notices."""
        with self.lock:
            next_id = max(self._next_valid_id, self._highest_id.get(client_id, 0) + 1)
            return [
                Message(REPLY, "info", _fixed([Out.MANAGED_ACCTS, 1, self.account])),
                Message(REPLY, "info", _fixed([Out.NEXT_VALID_ID, 1, next_id])),
                _error(-1, 2104, "Market data farm connection is OK:usfarm"),
                _error(-1, 2106, "HMDS data farm connection is OK:ushmds"),
                _error(-1, 2158, "Sec-def data farm connection is OK:secdefnj"),
            ]

    def _req_ids(self, client_id: int, _version: int, fields: Sequence[str]) -> list[Message]:
        next_id = max(self._next_valid_id, self._highest_id.get(client_id, 0) + 1)
        return [Message(REPLY, "info", _fixed([Out.NEXT_VALID_ID, 1, next_id]))]

    def _req_current_time(self, _c: int, _v: int, _f: Sequence[str]) -> list[Message]:
        return [Message(REPLY, "info", _fixed([Out.CURRENT_TIME, 1, self._clock() // 1000]))]

    def _req_managed_accts(self, _c: int, _v: int, _f: Sequence[str]) -> list[Message]:
        return [Message(REPLY, "info", _fixed([Out.MANAGED_ACCTS, 1, self.account]))]

    def _req_contract_details(self, _c: int, _v: int, fields: Sequence[str]) -> list[Message]:
        reader = Reader(fields, 2)
        req_id = reader.integer()
        wanted = ContractFields.read(reader)
        found = [contract for contract in self.contracts.values() if contract.matches(wanted)]
        if not found:
            return [_error(req_id, 200, "No security definition has been found for the request")]
        messages = [
            Message(REPLY, "info", _fixed(_contract_data(req_id, contract, wanted)))
            for contract in found
        ]
        messages.append(Message(REPLY, "info", _fixed([Out.CONTRACT_DATA_END, 1, req_id])))
        return messages

    def _place_order(self, client_id: int, version: int, fields: Sequence[str]) -> list[Message]:
        request = parse_place_order(fields, version)
        self._submissions[request.order_ref] = self._submissions.get(request.order_ref, 0) + 1
        existing = self._orders.get(f"{client_id}/{request.order_id}")
        if existing is None:
            # A placeOrder naming an order id the client used before is a modification
            # attempt (of a live order, or refused: 104 filled, 103 cancelled), not a placement.
            self._placements[request.order_ref] = self._placements.get(request.order_ref, 0) + 1
        if self._refusals:
            refusal = self._refusals.pop(0)
            return [_error(request.order_id, refusal.code, refusal.text, to=client_id)]
        existing = self._orders.get(f"{client_id}/{request.order_id}")
        if existing is not None:
            return self._modify(existing, request)
        if request.order_id <= self._highest_id.get(client_id, 0):
            return [_error(request.order_id, 103, "Duplicate order id", to=client_id)]
        self._highest_id[client_id] = request.order_id
        return self._new_order(client_id, request)

    def _new_order(self, client_id: int, request: PlaceOrder) -> list[Message]:
        oid = request.order_id
        contract = self._find(request.contract)
        if contract is None:
            return [
                _error(
                    oid, 200, "No security definition has been found for the request", to=client_id
                )
            ]
        problem = self._check(contract, request)
        if problem is not None:
            code, text = problem
            return [_error(oid, code, text, to=client_id)]
        assert request.total_quantity is not None
        order = _Order(
            client_id=client_id,
            order_id=oid,
            perm_id=self._next_perm_id,
            contract=contract,
            action=request.action,
            quantity=request.total_quantity,
            order_type=request.order_type,
            lmt_price=request.lmt_price,
            aux_price=request.aux_price,
            tif=request.tif or "DAY",
            order_ref=request.order_ref,
            account=request.account or self.account,
            outside_rth=request.outside_rth,
            trail_stop_price=request.trail_stop_price,
            trailing_percent=request.trailing_percent,
            good_till_date=request.good_till_date,
        )
        self._next_perm_id += 1
        order_type = _ORDER_TYPES[order.order_type]
        stop = order.aux_price if order.order_type in _TRIGGERED else None
        price = order.lmt_price if order.order_type in _LIMITED else None
        trailing: Decimal | None = None
        if order_type is OrderType.TRAILING_STOP:
            trailing = order.aux_price
            if trailing is None and order.trailing_percent is not None:
                last = self.sim.quote(contract.sim_symbol).last
                trailing = _to_tick(last * order.trailing_percent / 100, contract.min_tick)
        expire_ns = _gtd_ns(order.good_till_date) if order.tif == "GTD" else None
        events = self.sim.submit(
            order.key,
            contract.sim_symbol,
            Side.BUY if order.action == "BUY" else Side.SELL,
            order_type,
            order.quantity,
            price=price,
            stop_price=stop,
            trailing_offset=trailing,
            time_in_force=_TIFS[order.tif],
            expire_time_ns=expire_ns,
        )
        if (
            len(events) == 1
            and isinstance(events[0], SimRejected)
            and events[0].code is SimRejectCode.STOP_WOULD_TRIGGER
        ):
            # IB executes a stop whose trigger the market already passed.
            immediate = OrderType.LIMIT if order.order_type in _LIMITED else OrderType.MARKET
            events = self.sim.submit(
                order.key,
                contract.sim_symbol,
                Side.BUY if order.action == "BUY" else Side.SELL,
                immediate,
                order.quantity,
                price=price,
                time_in_force=_TIFS[order.tif],
                expire_time_ns=expire_ns,
            )
        if len(events) == 1 and isinstance(events[0], SimRejected):
            return [_error(oid, 201, f"Order rejected - reason:{events[0].reason}", to=client_id)]
        self._orders[order.key] = order
        return self._apply(events)

    def _check(self, contract: IbkrContract, request: PlaceOrder) -> tuple[int, str] | None:
        if request.action not in {"BUY", "SELL"}:
            return 201, f"Order rejected - reason:Invalid action {request.action!r}"
        if request.order_type not in _ORDER_TYPES:
            return 387, "Unsupported order type for this exchange and security type."
        if request.tif not in _TIFS:
            return 201, f"Order rejected - reason:Invalid time in force {request.tif!r}"
        if request.account and request.account != self.account:
            return 201, f"Order rejected - reason:Unknown account {request.account!r}"
        if request.what_if:
            return 201, "Order rejected - reason:what-if orders are not modelled"
        if not request.transmit or request.parent_id:
            return (
                201,
                "Order rejected - reason:untransmitted and attached (parentId) orders are "
                "not modelled by the local TWS",
            )
        quantity = request.total_quantity
        if quantity is None or quantity <= 0:
            return 201, "Order rejected - reason:The order quantity must be positive"
        if quantity % contract.size_increment:
            return (
                201,
                "Order rejected - reason:The order size is not a multiple of the size "
                f"increment {fmt(contract.size_increment)}",
            )
        needs_limit = request.order_type in _LIMITED
        needs_stop = request.order_type in _TRIGGERED
        if needs_limit and request.lmt_price is None:
            return 201, "Order rejected - reason:A limit price is required"
        if needs_stop and request.aux_price is None:
            return 201, "Order rejected - reason:A stop price is required"
        if (
            request.order_type == "TRAIL"
            and request.aux_price is None
            and request.trailing_percent is None
        ):
            return 201, "Order rejected - reason:A trailing amount or percent is required"
        for price in (
            request.lmt_price if needs_limit else None,
            request.aux_price if needs_stop or request.order_type == "TRAIL" else None,
        ):
            if price is not None and (price <= 0 or price % contract.min_tick):
                return (
                    110,
                    "The price does not conform to the minimum price variation for this contract.",
                )
        if request.tif == "GTD" and _gtd_ns(request.good_till_date) is None:
            return 201, "Order rejected - reason:Invalid goodTillDate"
        return None

    def _modify(self, order: _Order, request: PlaceOrder) -> list[Message]:
        to = order.client_id
        if order.status == "Filled":
            return [_error(order.order_id, 104, "Can't modify a filled order.", to=to)]
        if not order.is_open:
            return [_error(order.order_id, 103, "Duplicate order id", to=to)]
        if request.action != order.action or request.order_type != order.order_type:
            return [
                _error(
                    order.order_id,
                    105,
                    "Order being modified does not match original order.",
                    to=to,
                )
            ]
        problem = self._check(order.contract, request)
        if problem is not None:
            return [_error(order.order_id, problem[0], problem[1], to=to)]
        assert request.total_quantity is not None
        events = self.sim.amend(
            order.key,
            quantity=request.total_quantity if request.total_quantity != order.quantity else None,
            price=request.lmt_price if order.order_type in _LIMITED else None,
            stop_price=request.aux_price if order.order_type in _TRIGGERED else None,
        )
        if events and isinstance(events[0], SimRejected):
            return [
                _error(order.order_id, 201, f"Order rejected - reason:{events[0].reason}", to=to)
            ]
        order.quantity = request.total_quantity
        order.lmt_price = request.lmt_price
        order.aux_price = request.aux_price
        order.tif = request.tif or order.tif
        order.order_ref = request.order_ref or order.order_ref
        order.outside_rth = request.outside_rth
        return self._apply(events)

    def _cancel_order(self, client_id: int, _v: int, fields: Sequence[str]) -> list[Message]:
        reader = Reader(fields, 2)
        order_id = reader.integer()
        order = self._orders.get(f"{client_id}/{order_id}")
        if order is None:
            return [
                _error(
                    order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."
                )
            ]
        if not order.is_open:
            return [
                _error(
                    order_id,
                    161,
                    f"Cancel attempted when order is not in a cancellable state.  "
                    f"Order permId ={order.perm_id}",
                )
            ]
        return self._apply(self.sim.cancel(order.key))

    def _global_cancel(self, _c: int, _v: int, _f: Sequence[str]) -> list[Message]:
        return self._apply(self.sim.cancel_all())

    def _req_open_orders(self, client_id: int, version: int, _f: Sequence[str]) -> list[Message]:
        return self._open_orders(lambda order: order.client_id == client_id)

    def _req_all_open_orders(self, _c: int, _v: int, _f: Sequence[str]) -> list[Message]:
        return self._open_orders(lambda _order: True)

    def _open_orders(self, wanted: Callable[[_Order], bool]) -> list[Message]:
        messages: list[Message] = []
        for order in self._orders.values():
            if order.is_open and wanted(order):
                messages.append(self._open_order(order, to=REPLY))
                messages.append(self._order_status(order, to=REPLY))
        messages.append(Message(REPLY, "info", _fixed([Out.OPEN_ORDER_END, 1])))
        return messages

    def _req_completed_orders(self, _c: int, _v: int, _f: Sequence[str]) -> list[Message]:
        """Every finished order of the account (any client id), then completedOrdersEnd."""
        messages: list[Message] = []
        for order in self._orders.values():
            if not order.is_open:
                snapshot = dataclasses.replace(order)
                messages.append(
                    Message(REPLY, "info", functools.partial(_completed_order_fields, snapshot))
                )
        messages.append(Message(REPLY, "info", _fixed([Out.COMPLETED_ORDERS_END])))
        return messages

    def _req_executions(self, _c: int, version: int, fields: Sequence[str]) -> list[Message]:
        reader = Reader(fields, 2)
        req_id = reader.integer()
        want_client = reader.integer()
        want_account = reader.text()
        want_time = reader.text()
        want_symbol = reader.text()
        want_sec_type = reader.text()
        want_exchange = reader.text()
        want_side = reader.text()
        since_ms = _filter_time_ms(want_time)
        messages: list[Message] = []
        for execution in self._executions:
            order = execution.order
            if want_client and order.client_id != want_client:
                continue
            if want_account and want_account != order.account:
                continue
            if since_ms is not None and execution.time_ms < since_ms:
                continue
            if want_symbol and want_symbol != order.contract.symbol:
                continue
            if want_sec_type and want_sec_type != order.contract.sec_type:
                continue
            if want_exchange and want_exchange not in {
                order.contract.exchange,
                order.contract.primary_exchange,
            }:
                continue
            if want_side and want_side.upper() not in {order.action, execution.side}:
                continue
            messages.append(self._exec_details(execution, req_id, to=REPLY))
            messages.append(self._commission_report(execution, to=REPLY))
        messages.append(Message(REPLY, "info", _fixed([Out.EXECUTION_DATA_END, 1, req_id])))
        return messages

    def _req_positions(self, _c: int, _v: int, _f: Sequence[str]) -> list[Message]:
        messages = [self._position(con_id, to=REPLY) for con_id in self._holdings]
        messages.append(Message(REPLY, "info", _fixed([Out.POSITION_END, 1])))
        return messages

    def _req_account_summary(self, _c: int, _v: int, fields: Sequence[str]) -> list[Message]:
        reader = Reader(fields, 2)
        req_id = reader.integer()
        reader.text()  # group name ("All")
        tags = {tag.strip() for tag in reader.text().split(",") if tag.strip()}
        values = self._account_values()
        messages = [
            Message(
                REPLY,
                "account",
                _fixed([Out.ACCOUNT_SUMMARY, 1, req_id, self.account, tag, value, currency]),
            )
            for tag, (value, currency) in values.items()
            if tag in tags or "$LEDGER" in tags or "$LEDGER:ALL" in tags
        ]
        messages.append(Message(REPLY, "info", _fixed([Out.ACCOUNT_SUMMARY_END, 1, req_id])))
        return messages

    def _req_account_updates(self, _c: int, _v: int, fields: Sequence[str]) -> list[Message]:
        reader = Reader(fields, 2)
        subscribe = reader.flag()
        if not subscribe:
            return []
        messages = [
            Message(
                REPLY,
                "account",
                _fixed([Out.ACCT_VALUE, 2, key, value, currency, self.account]),
            )
            for key, (value, currency) in self._account_values().items()
        ]
        messages.extend(self._portfolio(con_id, to=REPLY) for con_id in self._holdings)
        stamp = dt.datetime.fromtimestamp(self._clock() / 1000, dt.UTC).strftime("%H:%M")
        messages.append(Message(REPLY, "account", _fixed([Out.ACCT_UPDATE_TIME, 1, stamp])))
        messages.append(Message(REPLY, "info", _fixed([Out.ACCT_DOWNLOAD_END, 1, self.account])))
        return messages

    def _req_account_updates_multi(self, _c: int, _v: int, fields: Sequence[str]) -> list[Message]:
        reader = Reader(fields, 2)
        req_id = reader.integer()
        reader.text()  # account
        model_code = reader.text()
        messages = [
            Message(
                REPLY,
                "account",
                _fixed(
                    [
                        Out.ACCOUNT_UPDATE_MULTI,
                        1,
                        req_id,
                        self.account,
                        model_code,
                        key,
                        value,
                        currency,
                    ]
                ),
            )
            for key, (value, currency) in self._account_values().items()
        ]
        messages.append(Message(REPLY, "info", _fixed([Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id])))
        return messages

    def _ignore(self, _c: int, _v: int, _f: Sequence[str]) -> list[Message]:
        return []

    # ------------------------------------------------------------ market

    def quote(self, con_id: int) -> tuple[Decimal, Decimal, Decimal]:
        """``(bid, ask, last)`` of a contract now."""
        with self.lock:
            quote = self.sim.quote(self.contracts[con_id].sim_symbol)
            return quote.bid, quote.ask, quote.last

    def contract_for(self, wanted: ContractFields) -> IbkrContract | None:
        with self.lock:
            return self._find(wanted)

    def set_price(self, con_id: int, price: Decimal) -> list[Message]:
        with self.lock:
            return self._apply(self.sim.set_price(self.contracts[con_id].sim_symbol, price))

    def step(self, con_id: int | None = None) -> list[Message]:
        with self.lock:
            symbol = None if con_id is None else self.contracts[con_id].sim_symbol
            return self._apply(self.sim.step(symbol))

    def place_direct(
        self,
        client_id: int,
        con_id: int,
        action: str,
        quantity: Decimal,
        *,
        order_type: str = "MKT",
        lmt_price: Decimal | None = None,
        aux_price: Decimal | None = None,
        tif: str = "DAY",
        order_ref: str = "",
    ) -> tuple[int, list[Message]]:
        """An order placed by another client (TWS itself is client 0): its id and messages."""
        with self.lock:
            order_id = max(self._next_valid_id, self._highest_id.get(client_id, 0) + 1)
            self._highest_id[client_id] = order_id
            contract = self.contracts[con_id]
            request = PlaceOrder(
                order_id=order_id,
                contract=ContractFields(con_id=con_id),
                action=action,
                total_quantity=Decimal(quantity),
                order_type=order_type,
                lmt_price=lmt_price,
                aux_price=aux_price,
                tif=tif,
                account=self.account,
                order_ref=order_ref,
                transmit=True,
                parent_id=0,
                outside_rth=False,
                good_till_date="",
                trail_stop_price=None,
                trailing_percent=None,
                what_if=False,
                cash_qty=None,
                conditions=0,
            )
            if order_ref:
                self._submissions[order_ref] = self._submissions.get(order_ref, 0) + 1
                self._placements[order_ref] = self._placements.get(order_ref, 0) + 1
            problem = self._check(contract, request)
            if problem is not None:
                raise ValueError(f"the order would be refused: {problem[0]} {problem[1]}")
            return order_id, self._new_order(client_id, request)

    def correct_execution(self, exec_id: str, price: Decimal | None = None) -> list[Message]:
        """Publish a correction of execution ``exec_id``, as IB does: the same execution with
        the digits after the final period of its execId incremented (``.01.01`` -> ``.01.02``),
        at ``price`` if given. The correction replaces the execution in the account's books."""
        with self.lock:
            index = next((i for i, e in enumerate(self._executions) if e.exec_id == exec_id), None)
            if index is None:
                raise KeyError(exec_id)
            old = self._executions[index]
            base, _, serial = old.exec_id.rpartition(".")
            new_price = old.price if price is None else Decimal(price)
            corrected = dataclasses.replace(
                old, exec_id=f"{base}.{int(serial, 16) + 1:02x}", price=new_price
            )
            self._executions[index] = corrected
            contract = old.order.contract
            signed = old.shares if old.side == "BOT" else -old.shares
            delta = (new_price - old.price) * signed * contract.factor
            holding = self._holdings[contract.con_id]
            if contract.sec_type == "FUT":
                self._cash -= delta
                holding.realized -= delta
            else:
                self._cash -= delta
            if holding.position:
                holding.avg_price += delta / contract.factor / holding.position
            order = old.order
            order.notional += (new_price - old.price) * old.shares
            return [
                self._exec_details(corrected, -1, to=order.client_id),
                self._commission_report(corrected, to=order.client_id),
                self._position(contract.con_id, to=POSITION_SUBSCRIBERS),
            ]

    def refuse_next_order(self, code: int, text: str) -> None:
        with self.lock:
            self._refusals.append(_Refusal(code, text))

    def clear_refusals(self) -> None:
        with self.lock:
            self._refusals.clear()

    def con_id_of(self, symbol: str) -> int:
        """A contract by conId (as text), local symbol or symbol (stocks first); KeyError if none."""
        with self.lock:
            if symbol.isdigit() and int(symbol) in self.contracts:
                return int(symbol)
            for contract in self.contracts.values():
                if symbol == contract.local_symbol:
                    return contract.con_id
            for contract in self.contracts.values():
                if symbol == contract.symbol:
                    return contract.con_id
        raise KeyError(symbol)

    # -------------------------------------------------------- inspection

    def orders(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "clientId": order.client_id,
                    "orderId": order.order_id,
                    "permId": order.perm_id,
                    "conId": order.contract.con_id,
                    "symbol": order.contract.local_symbol,
                    "action": order.action,
                    "totalQuantity": order.quantity,
                    "orderType": order.order_type,
                    "lmtPrice": order.lmt_price,
                    "auxPrice": order.aux_price,
                    "tif": order.tif,
                    "orderRef": order.order_ref,
                    "status": order.status,
                    "filled": order.filled,
                    "remaining": order.remaining,
                    "avgFillPrice": order.avg_price,
                }
                for order in self._orders.values()
            ]

    def fills(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "execId": execution.exec_id,
                    "orderId": execution.order.order_id,
                    "clientId": execution.order.client_id,
                    "orderRef": execution.order.order_ref,
                    "conId": execution.order.contract.con_id,
                    "side": execution.side,
                    "shares": execution.shares,
                    "price": execution.price,
                    "commission": execution.commission,
                    "time_ms": execution.time_ms,
                }
                for execution in self._executions
            ]

    def positions(self) -> dict[str, Decimal]:
        """Signed position per local symbol, flat contracts left out."""
        with self.lock:
            return {
                self.contracts[con_id].local_symbol: holding.position
                for con_id, holding in self._holdings.items()
                if holding.position
            }

    def submissions(self) -> dict[str, int]:
        with self.lock:
            return dict(self._submissions)

    def placements(self) -> dict[str, int]:
        with self.lock:
            return dict(self._placements)

    def cash(self) -> Decimal:
        with self.lock:
            return self._cash

    def account_values(self) -> dict[str, str]:
        with self.lock:
            return {key: value for key, (value, _currency) in self._account_values().items()}

    # ------------------------------------------------------------ events

    def _apply(self, events: Sequence[SimEvent]) -> list[Message]:
        messages: list[Message] = []
        for event in events:
            order = self._orders.get(event.client_order_id)
            if order is None:
                continue
            if isinstance(event, SimAccepted):
                order.status = "PreSubmitted" if order.order_type in _CONDITIONAL else "Submitted"
                messages.append(self._open_order(order))
                messages.append(self._order_status(order))
            elif isinstance(event, SimFill):
                messages.extend(self._fill(order, event))
            elif isinstance(event, SimCanceled):
                order.status = "Cancelled"
                messages.append(
                    _error(order.order_id, 202, "Order Canceled - reason:", to=order.client_id)
                )
                messages.append(self._order_status(order))
            elif isinstance(event, SimExpired):
                order.status = "Cancelled"
                messages.append(self._order_status(order))
            elif isinstance(event, SimAmended):
                if event.quantity == order.filled and order.filled:
                    order.status = "Filled"
                messages.append(self._open_order(order))
                messages.append(self._order_status(order))
            if not order.is_open and not order.done_ms:
                order.done_ms = event.ts_ns // 1_000_000
        return messages

    def _fill(self, order: _Order, fill: SimFill) -> list[Message]:
        contract = order.contract
        order.filled += fill.quantity
        order.notional += fill.quantity * fill.price
        order.last_fill_price = fill.price
        if fill.leaves_quantity == 0:
            order.status = "Filled"
        elif order.order_type in _CONDITIONAL:
            order.status = "Submitted"
        commission = self._commission(order, fill.quantity, fill.price)
        realized = self._book(contract, order.action, fill.quantity, fill.price, commission)
        self._exec_seq += 1
        execution = _Execution(
            exec_id=f"{order.perm_id & 0xFFFFFFFF:08x}.{self._exec_seq + 0x6576A2B4:08x}.01.01",
            order=order,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=fill.quantity,
            price=fill.price,
            time_ms=fill.ts_ns // 1_000_000,
            cum_qty=order.filled,
            avg_price=order.avg_price,
            commission=commission,
            realized_pnl=realized,
            liquidity=1 if fill.is_maker else 2,
        )
        self._executions.append(execution)
        messages = [
            self._exec_details(execution, -1, to=order.client_id),
            self._order_status(order),
        ]
        if order.status == "Filled":
            messages.append(self._open_order(order))
        messages.append(self._commission_report(execution, to=order.client_id))
        messages.append(self._position(contract.con_id, to=POSITION_SUBSCRIBERS))
        messages.append(self._portfolio(contract.con_id, to=ACCOUNT_SUBSCRIBERS))
        messages.extend(
            Message(
                ACCOUNT_SUBSCRIBERS,
                "account",
                _fixed([Out.ACCT_VALUE, 2, key, value, currency, self.account]),
            )
            for key, (value, currency) in self._account_values().items()
        )
        return messages

    def _commission(self, order: _Order, quantity: Decimal, price: Decimal) -> Decimal:
        contract = order.contract
        kind = contract.sec_type
        if kind == "STK":
            rate, minimum = quantity * Decimal("0.005"), Decimal(1)
        elif kind == "CASH":
            rate, minimum = quantity * price * Decimal("0.00002"), Decimal(2)
        elif kind == "FUT":
            rate, minimum = quantity * Decimal("0.85"), Decimal(0)
        else:
            rate, minimum = quantity * Decimal("0.65"), Decimal(1)
        charge = rate
        if order.commission_charged < minimum:
            charge = max(rate, minimum - order.commission_charged)
        charge = charge.quantize(_CENTS, rounding=ROUND_HALF_EVEN)
        order.commission_charged += charge
        return charge

    def _book(
        self, contract: IbkrContract, action: str, quantity: Decimal, price: Decimal, fee: Decimal
    ) -> Decimal | None:
        """Update cash and the holding; the realized P/L of this execution (None if it opened).

        As IB keeps its books: the average cost includes the commissions paid to
        open (a long's cost rises by them, a short's proceeds fall), and a
        closing execution's realized P/L is net of its own commission.
        """
        holding = self._holdings.setdefault(contract.con_id, _Holding())
        signed = quantity if action == "BUY" else -quantity
        factor = contract.factor
        realized: Decimal | None = None
        gross = released = Decimal(0)
        opened, opening_fee = quantity, fee
        if holding.position and (holding.position > 0) != (signed > 0):
            closed = min(abs(holding.position), quantity)
            closing_fee = fee * closed / quantity
            direction = 1 if holding.position > 0 else -1
            gross = (price - holding.avg_price) * closed * factor * direction
            realized = gross - closing_fee
            holding.realized += realized
            released = holding.open_fees * closed / abs(holding.position)
            holding.open_fees -= released
            opened, opening_fee = quantity - closed, fee - closing_fee
        new_position = holding.position + signed
        side = 1 if new_position > 0 else -1
        if new_position == 0:
            holding.avg_price = Decimal(0)
            holding.open_fees = Decimal(0)
        elif holding.position == 0 or (holding.position > 0) != (new_position > 0):
            holding.avg_price = price + side * opening_fee / (opened * factor)
            holding.open_fees = opening_fee
        elif (holding.position > 0) == (signed > 0):
            basis = abs(holding.position) * holding.avg_price + quantity * price
            holding.avg_price = (basis + side * fee / factor) / abs(new_position)
            holding.open_fees += fee
        if contract.sec_type == "FUT":
            # Futures settle only P/L: what this execution closed (its opening fees were
            # paid when they were, not again now), less this execution's whole fee.
            self._cash += gross + released - fee
        else:
            self._cash -= signed * price * factor + fee
        holding.position = new_position
        return None if realized is None else _money(realized)

    def _account_values(self) -> dict[str, tuple[str, str]]:
        gross = Decimal(0)
        market_value = Decimal(0)
        unrealized = Decimal(0)
        realized = Decimal(0)
        for con_id, holding in self._holdings.items():
            contract = self.contracts[con_id]
            mark = self.sim.quote(contract.sim_symbol).last
            value = holding.position * mark * contract.factor
            gross += abs(value)
            unrealized += (mark - holding.avg_price) * holding.position * contract.factor
            realized += holding.realized
            if contract.sec_type != "FUT":
                market_value += value
        liquidation = self._cash + market_value
        liquidation += sum(
            (
                # The fees inside the average cost were already paid from cash.
                (self.sim.quote(self.contracts[c].sim_symbol).last - h.avg_price)
                * h.position
                * self.contracts[c].factor
                + h.open_fees
                for c, h in self._holdings.items()
                if self.contracts[c].sec_type == "FUT"
            ),
            Decimal(0),
        )
        initial = gross * _INITIAL_MARGIN
        maintenance = gross * _MAINT_MARGIN
        available = liquidation - initial
        plain = {
            "AccountType": ("INDIVIDUAL", ""),
            "NetLiquidation": (fmt(_money(liquidation)), "USD"),
            "TotalCashValue": (fmt(_money(self._cash)), "USD"),
            "SettledCash": (fmt(_money(self._cash)), "USD"),
            "EquityWithLoanValue": (fmt(_money(liquidation)), "USD"),
            "GrossPositionValue": (fmt(_money(gross)), "USD"),
            "InitMarginReq": (fmt(_money(initial)), "USD"),
            "MaintMarginReq": (fmt(_money(maintenance)), "USD"),
            "AvailableFunds": (fmt(_money(available)), "USD"),
            "ExcessLiquidity": (fmt(_money(liquidation - maintenance)), "USD"),
            "BuyingPower": (fmt(_money(available * 4)), "USD"),
            "UnrealizedPnL": (fmt(_money(unrealized)), "USD"),
            "RealizedPnL": (fmt(_money(realized)), "USD"),
            "Currency": ("USD", "USD"),
        }
        return plain

    # ------------------------------------------------------------ messages

    def _find(self, wanted: ContractFields) -> IbkrContract | None:
        found = [contract for contract in self.contracts.values() if contract.matches(wanted)]
        return found[0] if len(found) == 1 else None

    def _order_status(self, order: _Order, to: str | int | None = None) -> Message:
        return Message(
            order.client_id if to is None else to,
            "order",
            order=order.key,
            build=_fixed(
                [
                    Out.ORDER_STATUS,
                    order.order_id,
                    order.status,
                    fmt(order.filled),
                    fmt(order.remaining),
                    fmt(_price(order.avg_price)),
                    order.perm_id,
                    0,
                    fmt(_price(order.last_fill_price)),
                    order.client_id,
                    "",
                    0,
                ]
            ),
        )

    def _open_order(self, order: _Order, to: str | int | None = None) -> Message:
        snapshot = dataclasses.replace(order)
        return Message(
            order.client_id if to is None else to,
            "order",
            functools.partial(_open_order_fields, snapshot),
            order=order.key,
        )

    def _exec_details(self, execution: _Execution, req_id: int, *, to: str | int) -> Message:
        def build(version: int) -> list[str]:
            order = execution.order
            fields = [
                Out.EXECUTION_DATA,
                req_id,
                order.order_id,
                *order.contract.fields(),
                execution.exec_id,
                _ib_time(execution.time_ms),
                order.account,
                order.contract.primary_exchange or order.contract.exchange,
                execution.side,
                fmt(execution.shares),
                fmt(execution.price),
                order.perm_id,
                order.client_id,
                0,
                fmt(execution.cum_qty),
                fmt(_price(execution.avg_price)),
                order.order_ref,
                "",
                "",
                "",
                execution.liquidity,
            ]
            if version >= _VERSION_PENDING_PRICE_REVISION:
                fields.append(0)
            return [fmt(value) for value in fields]

        return Message(to, "exec", build, order=execution.order.key)

    def _commission_report(self, execution: _Execution, *, to: str | int) -> Message:
        realized = execution.realized_pnl
        return Message(
            to,
            "commission",
            order=execution.order.key,
            build=_fixed(
                [
                    Out.COMMISSION_REPORT,
                    1,
                    execution.exec_id,
                    fmt(execution.commission),
                    "USD",
                    UNSET_DOUBLE if realized is None else fmt(realized),
                    UNSET_DOUBLE,
                    "",
                ]
            ),
        )

    def _position(self, con_id: int, *, to: str | int) -> Message:
        """position (id 61, version 3): account, contract, position, average cost."""
        contract = self.contracts[con_id]
        holding = self._holdings.get(con_id, _Holding())
        return Message(
            to,
            "account",
            _fixed(
                [
                    Out.POSITION_DATA,
                    3,
                    self.account,
                    *contract.fields(),
                    fmt(holding.position),
                    fmt(_money(holding.avg_price * contract.factor)),
                ]
            ),
        )

    def _portfolio(self, con_id: int, *, to: str | int) -> Message:
        contract = self.contracts[con_id]
        holding = self._holdings.get(con_id, _Holding())
        mark = self.sim.quote(contract.sim_symbol).last
        factor = contract.factor
        fields = contract.fields()
        return Message(
            to,
            "account",
            _fixed(
                [
                    Out.PORTFOLIO_VALUE,
                    8,
                    *fields[:7],
                    contract.primary_exchange,
                    *fields[8:],
                    fmt(holding.position),
                    fmt(mark),
                    fmt(_money(holding.position * mark * factor)),
                    fmt(_money(holding.avg_price * factor)),
                    fmt(_money((mark - holding.avg_price) * holding.position * factor)),
                    fmt(_money(holding.realized)),
                    self.account,
                ]
            ),
        )


def _open_order_fields(order: _Order, version: int) -> list[str]:
    """openOrder (id 5) in ib_async's ``Decoder.openOrder`` / ibapi's ``OrderDecoder`` order."""
    contract = order.contract
    fields: list[object] = [
        Out.OPEN_ORDER,
        order.order_id,
        *contract.fields(),
        order.action,
        fmt(order.quantity),
        order.order_type,
        fmt(order.lmt_price) if order.lmt_price is not None else "",
        fmt(order.aux_price) if order.aux_price is not None else "",
        order.tif,
        "",  # ocaGroup
        order.account,
        "",  # openClose
        0,  # origin: customer
        order.order_ref,
        order.client_id,
        order.perm_id,
        order.outside_rth,
        False,  # hidden
        "",  # discretionaryAmt
        "",  # goodAfterTime
        "",  # deprecated sharesAllocation
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if version < _VERSION_FA_PROFILE_DESUPPORT:
        fields.append("")  # faProfile
    fields += [
        "",  # modelCode
        order.good_till_date,
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        False,  # allOrNone
        "",  # minQty
        3,  # ocaType
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        "",  # nbboPriceCap
        0,  # parentId
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (none: no delta-neutral block follows)
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        fmt(order.trail_stop_price) if order.trail_stop_price is not None else "",
        fmt(order.trailing_percent) if order.trailing_percent is not None else "",
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
        0,  # comboLegs count
        0,  # orderComboLegs count
        0,  # smartComboRoutingParams count
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement (unset: no scale block follows)
        "",  # hedgeType (none: no hedgeParam)
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # deltaNeutralContract present
        "",  # algoStrategy (none: no params)
        False,  # solicited
        False,  # whatIf
        order.status,
        "",  # initMarginBefore
        "",  # maintMarginBefore
        "",  # equityWithLoanBefore
        "",  # initMarginChange
        "",  # maintMarginChange
        "",  # equityWithLoanChange
        "",  # initMarginAfter
        "",  # maintMarginAfter
        "",  # equityWithLoanAfter
        "",  # commission
        "",  # minCommission
        "",  # maxCommission
        "",  # commissionCurrency
        "",  # warningText
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions count
        "",  # adjustedOrderType
        "",  # triggerPrice
        fmt(order.trail_stop_price) if order.trail_stop_price is not None else "",
        "",  # lmtPriceOffset
        "",  # adjustedStopPrice
        "",  # adjustedStopLimitPrice
        "",  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        "",  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        "",  # usePriceMgmtAlgo
        "",  # duration
        "",  # postToAts
        False,  # autoCancelParent
        "",  # minTradeQty
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    return [fmt(value) for value in fields]


def _completed_order_fields(order: _Order, version: int) -> list[str]:
    """completedOrder (id 101) in ib_async's ``Decoder.completedOrder`` order (no order id)."""
    contract = order.contract
    fields: list[object] = [
        Out.COMPLETED_ORDER,
        *contract.fields(),
        order.action,
        fmt(order.quantity),
        order.order_type,
        fmt(order.lmt_price) if order.lmt_price is not None else "",
        fmt(order.aux_price) if order.aux_price is not None else "",
        order.tif,
        "",  # ocaGroup
        order.account,
        "",  # openClose
        0,  # origin
        order.order_ref,
        order.perm_id,
        order.outside_rth,
        False,  # hidden
        "",  # discretionaryAmt
        "",  # goodAfterTime
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if version < _VERSION_FA_PROFILE_DESUPPORT:
        fields.append("")  # faProfile
    fields += [
        "",  # modelCode
        order.good_till_date,
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        False,  # sweepToFill
        False,  # allOrNone
        "",  # minQty
        3,  # ocaType
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (none)
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        fmt(order.trail_stop_price) if order.trail_stop_price is not None else "",
        fmt(order.trailing_percent) if order.trailing_percent is not None else "",
        "",  # comboLegsDescrip
        0,  # comboLegs count
        0,  # orderComboLegs count
        0,  # smartComboRoutingParams count
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement (unset)
        "",  # hedgeType (none)
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # deltaNeutralContract present
        "",  # algoStrategy (none)
        False,  # solicited
        order.status,
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions count
        fmt(order.trail_stop_price) if order.trail_stop_price is not None else "",
        "",  # lmtPriceOffset
        "",  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        "",  # autoCancelDate
        fmt(order.filled),  # filledQuantity
        0,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        0,  # parentPermId
        _ib_time(order.done_ms),  # completedTime
        "Filled Size: " + fmt(order.filled) if order.status == "Filled" else "Cancelled by Trader",
        "",  # minTradeQty
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    return [fmt(value) for value in fields]


def _ib_time(epoch_ms: int) -> str:
    """A stamp as TWS writes it: ``yyyymmdd hh:mm:ss <zone>`` (always UTC here)."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


def _contract_data(req_id: int, contract: IbkrContract, wanted: ContractFields) -> list[object]:
    """contractData (id 10) for server versions >= 164 (no version field; size rules at the end)."""
    exchange = contract.exchange
    if wanted.exchange and wanted.exchange != "SMART" and contract.sec_type == "STK":
        exchange = wanted.exchange
    return [
        Out.CONTRACT_DATA,
        req_id,
        contract.symbol,
        contract.sec_type,
        contract.last_trade,
        fmt(contract.strike) if contract.strike is not None else "0",
        contract.right,
        exchange,
        contract.currency,
        contract.local_symbol,
        contract.market_name,
        contract.trading_class,
        contract.con_id,
        fmt(contract.min_tick),
        contract.multiplier,
        "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,DAY,DEACT,FOK,GTC,GTD,GTT,"
        "IOC,LIT,LMT,MIT,MKT,MOC,NONALGO,OCA,OPG,REL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,"
        "TRAILMIT,WHATIF",
        contract.valid_exchanges or exchange,
        1,  # priceMagnifier
        0,  # underConId
        contract.long_name,
        contract.primary_exchange,
        contract.last_trade[:6] if contract.last_trade else "",
        "",  # industry
        "",  # category
        "",  # subcategory
        contract.time_zone,
        "",  # tradingHours
        "",  # liquidHours
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        contract.symbol if contract.sec_type in {"OPT", "FUT"} else "",
        "STK" if contract.sec_type == "OPT" else ("IND" if contract.sec_type == "FUT" else ""),
        "26",  # marketRuleIds
        contract.last_trade,  # realExpirationDate
        "COMMON" if contract.sec_type == "STK" else "",
        fmt(contract.size_increment),  # minSize
        fmt(contract.size_increment),  # sizeIncrement
        fmt(contract.size_increment),  # suggestedSizeIncrement
    ]


def _error(req_id: int, code: int, text: str, *, to: str | int = REPLY) -> Message:
    """errMsg (id 4, version 2) with the empty advancedOrderRejectJson of versions >= 166."""
    kind = "info" if code in {2104, 2106, 2158, 2107, 2108} else "error"
    order = f"{to}/{req_id}" if isinstance(to, int) else None
    return Message(to, kind, _fixed([Out.ERR_MSG, 2, req_id, code, text, ""]), order=order)


def error_message(req_id: int, code: int, text: str, *, to: str | int = REPLY) -> Message:
    """An errMsg for the server's own notices (1100/1101/1102, 100, 326)."""
    return _error(req_id, code, text, to=to)


def _money(value: Decimal) -> Decimal:
    return value.quantize(_MONEY, rounding=ROUND_HALF_EVEN)


def _price(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN).normalize()


def _to_tick(value: Decimal, tick: Decimal) -> Decimal:
    return max((value / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick, tick)


def _parse_ib_time(text: str) -> dt.datetime | None:
    """``yyyymmdd hh:mm:ss [zone]`` or ``yyyymmdd-hh:mm:ss`` (UTC); None if not one."""
    text = text.strip()
    if not text:
        return None
    zone: dt.tzinfo = dt.UTC
    if "-" in text[:9]:
        stamp = text.replace("-", " ", 1)
    else:
        parts = text.split(" ")
        parts = [part for part in parts if part]
        if len(parts) == 3:
            from zoneinfo import ZoneInfo  # noqa: PLC0415 - only for zoned filters

            try:
                zone = ZoneInfo(parts[2])
            except (KeyError, ValueError):
                return None
        stamp = " ".join(parts[:2])
    try:
        return dt.datetime.strptime(stamp, "%Y%m%d %H:%M:%S").replace(tzinfo=zone)
    except ValueError:
        return None


def _filter_time_ms(text: str) -> int | None:
    parsed = _parse_ib_time(text)
    return None if parsed is None else int(parsed.timestamp() * 1000)


def _gtd_ns(text: str) -> int | None:
    parsed = _parse_ib_time(text)
    return None if parsed is None else int(parsed.timestamp()) * 1_000_000_000


_HANDLERS: dict[int, Callable[[IbkrExchange, int, int, Sequence[str]], list[Message]]] = {
    In.PLACE_ORDER: IbkrExchange._place_order,
    In.CANCEL_ORDER: IbkrExchange._cancel_order,
    In.REQ_OPEN_ORDERS: IbkrExchange._req_open_orders,
    In.REQ_ALL_OPEN_ORDERS: IbkrExchange._req_all_open_orders,
    In.REQ_AUTO_OPEN_ORDERS: IbkrExchange._ignore,
    In.REQ_ACCT_DATA: IbkrExchange._req_account_updates,
    In.REQ_EXECUTIONS: IbkrExchange._req_executions,
    In.REQ_IDS: IbkrExchange._req_ids,
    In.REQ_CONTRACT_DATA: IbkrExchange._req_contract_details,
    In.REQ_MANAGED_ACCTS: IbkrExchange._req_managed_accts,
    In.REQ_CURRENT_TIME: IbkrExchange._req_current_time,
    In.REQ_GLOBAL_CANCEL: IbkrExchange._global_cancel,
    In.REQ_POSITIONS: IbkrExchange._req_positions,
    In.CANCEL_POSITIONS: IbkrExchange._ignore,
    In.REQ_ACCOUNT_SUMMARY: IbkrExchange._req_account_summary,
    In.CANCEL_ACCOUNT_SUMMARY: IbkrExchange._ignore,
    In.REQ_ACCOUNT_UPDATES_MULTI: IbkrExchange._req_account_updates_multi,
    In.CANCEL_ACCOUNT_UPDATES_MULTI: IbkrExchange._ignore,
    In.REQ_COMPLETED_ORDERS: IbkrExchange._req_completed_orders,
}
