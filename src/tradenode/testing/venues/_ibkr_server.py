"""Run the local TWS on loopback: the TWS API socket on plain TCP, trio on a background thread.

:class:`IbkrVenue` is a :class:`~._loopback.LoopbackVenue` whose venue is a
raw TCP server (``trio.serve_listeners``), not an ASGI app: each connection
does the handshake (``API\\0`` and a version range; the answer is the
chosen server version and the connection time), then ``startApi`` with its
client id, and from then on exchanges length-prefixed NUL-separated
messages (:mod:`._ibkr_codec`) with the account (:mod:`._ibkr_exchange`).
Order events go to the connection(s) of the client id that placed the
order, as TWS routes them; answers to requests go to the asking connection;
account updates to the connections that subscribed to them; market data
ticks to the subscriptions of a contract whenever its price moves.

The fault knobs act on that routing (hold, duplicate or corrupt messages,
drop sockets, announce 1100/1101/1102) or on requests (pacing violations,
delayed, refused or unanswered orders). Every knob is callable from any
thread and as ``POST <admin_url>/<knob>``.

While connectivity is "lost" (after 1100) TWS keeps answering requests
from its own state, so requests are still served and orders still reach
the account here (a simplification: a real TWS would queue them); what is
held back are the unsolicited order, execution, commission and error
messages and the market data ticks. 1102 ("data maintained") then
delivers the held messages in order; 1101 ("data lost") drops them, and
the client must ask (reqExecutions, reqOpenOrders) to learn what happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import trio

from tradenode.testing.venues._ibkr_codec import (
    ContractFields,
    FrameDecoder,
    IbkrProtocolError,
    In,
    Out,
    Reader,
    encode_frame,
    fmt,
    negotiate,
    parse_place_order,
)
from tradenode.testing.venues._ibkr_exchange import (
    ACCOUNT_SUBSCRIBERS,
    DEFAULT_IBKR_ACCOUNT,
    POSITION_SUBSCRIBERS,
    REPLY,
    IbkrContract,
    IbkrExchange,
    Message,
    error_message,
)
from tradenode.testing.venues._knobs import Knob, admin_override, collect_knobs, knob
from tradenode.testing.venues._loopback import LoopbackVenue, wall_clock_ms

__all__ = ["KNOBS", "IbkrVenue"]

_log = logging.getLogger("tradenode.testing.venues.ibkr")
Json = dict[str, Any]

_DRAIN_SECONDS = 5.0
_UNSOLICITED_KINDS = frozenset({"order", "exec", "commission", "error"})
_TICK_TYPES = ((1, 0, "bid"), (2, 3, "ask"), (4, 5, "last"))


@dataclass(eq=False)
class _Connection:
    """One API client's socket: its negotiated version, client id and subscriptions."""

    stream: trio.SocketStream
    send: trio.MemorySendChannel[bytes]
    scope: trio.CancelScope
    version: int = 0
    client_id: int | None = None
    market_data: dict[int, int] = field(default_factory=dict)
    account_updates: bool = False
    positions: bool = False

    def write(self, frame: bytes) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            self.send.send_nowait(frame)


@dataclass
class _Faults:
    pacing: int = 0
    pacing_placements_only: bool = False
    delay_orders: int = 0
    duplicate_executions: int = 0
    hold_executions: bool = False
    connectivity_lost: bool = False
    corrupt: int = 0
    lose_answer: list[bool] = field(default_factory=list)

    def describe(self) -> Json:
        return {
            "pacing_violations": self.pacing,
            "pacing_placements_only": self.pacing_placements_only,
            "delay_orders": self.delay_orders,
            "duplicate_executions": self.duplicate_executions,
            "hold_executions": self.hold_executions,
            "connectivity_lost": self.connectivity_lost,
            "corrupt": self.corrupt,
            "lose_answer": list(self.lose_answer),
        }


class IbkrVenue(LoopbackVenue):
    """A local TWS / IB Gateway on 127.0.0.1: see the package docstring.

    Arguments: the ``account`` id (one, a paper ``DU...`` by default);
    ``contracts`` (default :func:`~._ibkr_exchange.default_ibkr_contracts`:
    AAPL and MSFT stocks, EUR.USD, the ES future, an AAPL call); starting
    ``cash`` in USD; the simulator ``seed``; ``host``/``port``/``admin_port``
    (0: ephemeral); ``clock`` in epoch milliseconds for every stamp;
    ``spread_bps`` between bid and ask (0: a resting order fills when the
    price reaches it); ``tick_interval`` to step prices by themselves.

    :meth:`wait_for` looks again after every message a client sends is handled
    (counted in :meth:`requests`, processed, or held by :meth:`delay_orders`).
    """

    VENUE_NAME = "IBKR"

    def __init__(
        self,
        *,
        account: str = DEFAULT_IBKR_ACCOUNT,
        contracts: Iterable[IbkrContract] | None = None,
        cash: Decimal = Decimal(1_000_000),
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        clock: Callable[[], int] | None = None,
        spread_bps: Decimal = Decimal(0),
        tick_interval: float | None = None,
    ) -> None:
        super().__init__(
            host=host, port=port, admin_port=admin_port, tick_interval=tick_interval, log=_log
        )
        self._clock = clock or wall_clock_ms
        self.exchange = IbkrExchange(
            account=account,
            contracts=contracts,
            cash=Decimal(cash),
            seed=seed,
            clock=self._clock,
            spread_bps=Decimal(spread_bps),
        )
        self._connections: set[_Connection] = set()
        self._faults = _Faults()
        self._held_executions: list[tuple[_Connection | None, Message]] = []
        self._held_while_lost: list[tuple[_Connection | None, Message]] = []
        self._delayed: list[tuple[_Connection, list[str]]] = []
        self._muted: set[str] = set()
        self._malformed = 0
        self._requests: dict[int, int] = {}

    def __repr__(self) -> str:
        state = "up" if self._is_up else ("started" if self._thread else "stopped")
        return (
            f"IbkrVenue(host={self._host!r}, port={self._port}, account={self.account!r}, {state})"
        )

    # ---------------------------------------------------------- addresses

    @property
    def host(self) -> str:
        return self._host

    @property
    def account(self) -> str:
        return self.exchange.account

    # ------------------------------------------------------------- server

    def _prepare(self) -> None:
        """Nothing process-wide: the TWS socket is plain TCP."""

    async def _serve_venue(
        self,
        trigger: Callable[[], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await trio.open_tcp_listeners(self._port, host=self._host)
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.serve_listeners, self._serve_connection, listeners))
            task_status.started([f"{self._host}:{port}"])
            await trigger()
            nursery.cancel_scope.cancel()

    async def _before_down(self) -> None:
        self._drop_all()

    def _tick(self) -> None:
        if not self._ticking:
            return
        try:
            self._route(None, self.exchange.step())
            for con_id in self.exchange.contracts:
                self._send_ticks(con_id)
        except Exception:  # noqa: BLE001 - a failed tick must not stop the venue's loop
            _log.exception("the local TWS's price tick failed")

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        send, receive = trio.open_memory_channel[bytes](math.inf)
        with trio.CancelScope() as scope:
            connection = _Connection(stream=stream, send=send, scope=scope)
            self._connections.add(connection)
            try:
                async with stream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, connection, receive)
                    await self._read_loop(connection)
                    # What was written before the close (a 326, say) still goes out.
                    self._connections.discard(connection)
                    send.close()
                    nursery.cancel_scope.deadline = trio.current_time() + _DRAIN_SECONDS
            except Exception:  # noqa: BLE001 - one client's trouble never stops the venue
                _log.exception("the local TWS closed a connection on an unexpected error")
            finally:
                self._connections.discard(connection)
                send.close()

    async def _write_loop(
        self, connection: _Connection, receive: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        try:
            async for frame in receive:
                await connection.stream.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            connection.scope.cancel()

    async def _read_loop(self, connection: _Connection) -> None:
        decoder = FrameDecoder()
        greeted = False
        while True:
            try:
                data = await connection.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the client went away (a reset is how many of them leave)
            if not data:
                return
            decoder.feed(data)
            try:
                if not greeted:
                    greeting = decoder.handshake()
                    if greeting is None:
                        continue
                    connection.version = negotiate(greeting)
                    greeted = True
                    now = dt.datetime.fromtimestamp(self._clock() / 1000, dt.UTC)
                    connection.write(
                        encode_frame([str(connection.version), now.strftime("%Y%m%d %H:%M:%S UTC")])
                    )
                messages = decoder.messages()
            except IbkrProtocolError as error:
                self._note_malformed(error)
                return
            for fields in messages:
                keep = self._on_message(connection, fields)
                self._changes.note()
                if not keep:
                    return

    def _on_message(self, connection: _Connection, fields: list[str]) -> bool:
        """Handle one request; False closes the connection."""
        try:
            message_id = int(fields[0]) if fields else -1
        except ValueError:
            message_id = -1
        self._requests[message_id] = self._requests.get(message_id, 0) + 1
        if connection.client_id is None:
            if message_id != In.START_API:
                self._note_malformed(IbkrProtocolError(f"message {fields[:1]} before startApi"))
                return True
            return self._start_api(connection, fields)
        if self._faults.pacing > 0 and (
            message_id == In.PLACE_ORDER or not self._faults.pacing_placements_only
        ):
            self._faults.pacing -= 1
            req_id = _request_id(message_id, fields)
            self._route(
                connection,
                [
                    error_message(
                        req_id,
                        100,
                        "Max rate of messages per second has been exceeded:max=50 rec=51 (1)",
                    )
                ],
            )
            return True
        if message_id == In.PLACE_ORDER and self._faults.lose_answer:
            # The order reaches the account; nothing about it reaches the client.
            drop = self._faults.lose_answer.pop(0)
            if drop:
                self._drop(connection)
                self._process(connection, fields)
                return False
            self._muted.add(f"{connection.client_id}/{_request_id(message_id, fields)}")
        if message_id == In.PLACE_ORDER and self._faults.delay_orders > 0:
            self._faults.delay_orders -= 1
            self._delayed.append((connection, fields))
            return True
        if any(held is connection for held, _ in self._delayed):
            # TWS reads a connection's messages in order: nothing overtakes a held one
            # (a later placeOrder with a higher id would make the held one a 103).
            self._delayed.append((connection, fields))
            return True
        self._process(connection, fields)
        return True

    def _process(self, connection: _Connection, fields: list[str]) -> None:
        message_id = int(fields[0])
        assert connection.client_id is not None
        try:
            if message_id == In.REQ_MKT_DATA:
                self._req_mkt_data(connection, fields)
                return
            if message_id == In.CANCEL_MKT_DATA:
                connection.market_data.pop(Reader(fields, 2).integer(), None)
                return
            if message_id == In.REQ_ACCT_DATA:
                connection.account_updates = Reader(fields, 2).flag()
            elif message_id in {In.REQ_POSITIONS, In.CANCEL_POSITIONS}:
                connection.positions = message_id == In.REQ_POSITIONS
            elif message_id == In.START_API:
                return
            messages = self.exchange.handle(connection.client_id, connection.version, fields)
        except IbkrProtocolError as error:
            self._note_malformed(error)
            req_id = _request_id(message_id, fields)
            self._route(connection, [error_message(req_id, 320, f"Error reading request: {error}")])
            return
        if message_id not in _KNOWN_REQUESTS:
            self._note_malformed(
                IbkrProtocolError(f"unknown or unmodelled message id {fields[:1]}")
            )
        self._route(connection, messages)

    def _start_api(self, connection: _Connection, fields: list[str]) -> bool:
        try:
            reader = Reader(fields, 2)
            client_id = reader.integer()
        except IbkrProtocolError as error:
            self._note_malformed(error)
            return False
        if any(other.client_id == client_id for other in self._connections):
            connection.write(
                encode_frame(
                    [
                        fmt(Out.ERR_MSG),
                        "2",
                        "-1",
                        "326",
                        "Unable to connect as the client id is already in use. "
                        "Retry with a unique client id.",
                        "",
                    ]
                )
            )
            return False
        connection.client_id = client_id
        self._route(connection, self.exchange.greet(client_id))
        if self._faults.connectivity_lost:
            self._route(connection, [_lost()])
        return True

    def _req_mkt_data(self, connection: _Connection, fields: list[str]) -> None:
        reader = Reader(fields, 2)
        req_id = reader.integer()
        wanted = ContractFields.read(reader)
        if wanted.sec_type == "BAG":
            self._route(connection, [error_message(req_id, 321, "Combos are not modelled")])
            return
        if reader.flag():
            reader.skip(3)
        reader.text()  # genericTickList
        snapshot = reader.flag()
        contract = self.exchange.contract_for(wanted)
        if contract is None:
            self._route(
                connection,
                [
                    error_message(
                        req_id, 200, "No security definition has been found for the request"
                    )
                ],
            )
            return
        connection.write(encode_frame([fmt(Out.MARKET_DATA_TYPE), "1", str(req_id), "1"]))
        self._write_ticks(connection, req_id, contract.con_id)
        if snapshot:
            connection.write(encode_frame([fmt(Out.TICK_SNAPSHOT_END), "1", str(req_id)]))
        else:
            connection.market_data[req_id] = contract.con_id

    def _write_ticks(self, connection: _Connection, req_id: int, con_id: int) -> None:
        bid, ask, last = self.exchange.quote(con_id)
        size = fmt(self.exchange.contracts[con_id].level_quantity)
        for (price_type, _size_type, _name), price in zip(
            _TICK_TYPES, (bid, ask, last), strict=True
        ):
            connection.write(
                encode_frame(
                    [fmt(Out.TICK_PRICE), "6", str(req_id), str(price_type), fmt(price), size, "0"]
                )
            )

    def _send_ticks(self, con_id: int) -> None:
        if self._faults.connectivity_lost:
            return
        for connection in list(self._connections):
            for req_id, subscribed in list(connection.market_data.items()):
                if subscribed == con_id:
                    self._write_ticks(connection, req_id, con_id)

    # ------------------------------------------------------------ routing

    def _route(self, origin: _Connection | None, messages: Sequence[Message]) -> None:
        """Deliver ``messages`` (answers to ``origin``), through the message faults."""
        for message in messages:
            unsolicited = message.to != REPLY and message.kind in _UNSOLICITED_KINDS
            if unsolicited and message.order in self._muted:
                continue
            if unsolicited and self._faults.connectivity_lost:
                self._held_while_lost.append((origin, message))
                continue
            if (
                unsolicited
                and self._faults.hold_executions
                and message.kind in {"exec", "commission"}
            ):
                self._held_executions.append((origin, message))
                continue
            self._deliver(origin, message)
            if unsolicited and message.kind == "exec" and self._faults.duplicate_executions > 0:
                self._faults.duplicate_executions -= 1
                self._deliver(origin, message)

    def _deliver(self, origin: _Connection | None, message: Message) -> None:
        for connection in self._targets(origin, message.to):
            fields = list(message.build(connection.version))
            if self._faults.corrupt > 0:
                self._faults.corrupt -= 1
                connection.write(encode_frame(fields[:3]))
            connection.write(encode_frame(fields))

    def _targets(self, origin: _Connection | None, to: str | int) -> list[_Connection]:
        if to == REPLY:
            return [origin] if origin is not None and origin in self._connections else []
        if to == ACCOUNT_SUBSCRIBERS:
            return [c for c in self._connections if c.account_updates]
        if to == POSITION_SUBSCRIBERS:
            return [c for c in self._connections if c.positions]
        return [c for c in self._connections if c.client_id == to]

    def _drop_all(self) -> int:
        dropped = list(self._connections)
        for connection in dropped:
            self._drop(connection)
        return len(dropped)

    def _drop(self, connection: _Connection) -> None:
        """An abortive close (RST), as when TWS or the network goes away."""
        connection.scope.cancel()
        with contextlib.suppress(OSError):
            connection.stream.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        self._connections.discard(connection)

    def _note_malformed(self, error: Exception) -> None:
        self._malformed += 1
        _log.warning("the local TWS got a malformed or unknown message: %s", error)

    # ------------------------------------------------------------- knobs

    @knob
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Set a contract's last price (by local symbol, symbol or conId); resting orders match."""
        con_id = self.exchange.con_id_of(symbol)

        def move() -> None:
            self._route(None, self.exchange.set_price(con_id, Decimal(price)))
            self._send_ticks(con_id)

        self._in_trio_sync(move)

    @knob
    def step(self, n: int = 1, symbol: str | None = None) -> None:
        """Move prices ``n`` ticks of the seeded walk (one contract or all)."""
        con_id = None if symbol is None else self.exchange.con_id_of(symbol)

        def move() -> None:
            for _ in range(n):
                self._route(None, self.exchange.step(con_id))
            for each in self.exchange.contracts if con_id is None else [con_id]:
                self._send_ticks(each)

        self._in_trio_sync(move)

    @knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or restart) the ``tick_interval`` moves."""
        self._ticking = not frozen

    @knob
    def drop_connections(self) -> int:
        """Cut every API socket at the TCP level (RST, no goodbye); returns how many."""
        return self._in_trio_sync(self._drop_all)

    @knob
    def connectivity_lost(self) -> None:
        """Tell every client error 1100 (TWS lost IB); hold order events until restored."""

        def lose() -> None:
            self._faults.connectivity_lost = True
            for connection in list(self._connections):
                if connection.client_id is not None:
                    self._deliver(connection, _lost())

        self._in_trio_sync(lose)

    @knob
    def connectivity_restored(self, data_lost: bool = False) -> int:
        """Error 1101 (``data_lost``: held events are gone) or 1102 (held events follow).

        Returns how many held messages were delivered.
        """

        def restore() -> int:
            self._faults.connectivity_lost = False
            held, self._held_while_lost = self._held_while_lost, []
            if data_lost:
                code, text = (
                    1101,
                    (
                        "Connectivity between IB and Trader Workstation has been restored - data lost."
                    ),
                )
            else:
                code, text = (
                    1102,
                    (
                        "Connectivity between IB and Trader Workstation has been restored - "
                        "data maintained. All data farms are connected: usfarm; ushmds; secdefnj."
                    ),
                )
            for connection in list(self._connections):
                if connection.client_id is not None:
                    self._deliver(connection, error_message(-1, code, text))
            if data_lost:
                return 0
            self._route_all(held)
            return len(held)

        return self._in_trio_sync(restore)

    @knob
    def duplicate_executions(self, count: int = 1) -> None:
        """Send each of the next ``count`` live execDetails twice (same execId)."""
        self._in_trio_sync(lambda: setattr(self._faults, "duplicate_executions", count))

    @knob
    def hold_executions(self) -> None:
        """Hold live execDetails and commissionReports (orderStatus still goes) until released."""
        self._in_trio_sync(lambda: setattr(self._faults, "hold_executions", True))

    @knob
    def release_executions(self) -> int:
        """Send the held execDetails/commissionReports in order; returns how many."""

        def release() -> int:
            self._faults.hold_executions = False
            held, self._held_executions = self._held_executions, []
            self._route_all(held)
            return len(held)

        return self._in_trio_sync(release)

    @knob
    def pacing_violation(self, count: int = 1, placements_only: bool = False) -> None:
        """Answer the next ``count`` requests error 100 (pacing) without processing them.

        ``placements_only``: count only ``placeOrder`` messages and let the others
        through. TWS paces every message; a test that means the next *order* to be
        paced says so, because a message the client wrote earlier (a quote
        subscription, say) may still be unread when the knob is set, and would
        otherwise take the fault in the order's place."""

        def arm() -> None:
            self._faults.pacing = count
            self._faults.pacing_placements_only = placements_only

        self._in_trio_sync(arm)

    @knob
    def delay_orders(self, count: int = 1) -> None:
        """Hold the next ``count`` placeOrder messages unprocessed until :meth:`release_orders`."""
        self._in_trio_sync(lambda: setattr(self._faults, "delay_orders", count))

    @knob
    def release_orders(self) -> int:
        """Process the held placeOrder messages, and what their connections sent after
        them, in arrival order; returns how many placeOrders were held."""

        def release() -> int:
            held, self._delayed = self._delayed, []
            for connection, fields in held:
                if connection in self._connections:
                    self._process(connection, fields)
                elif int(fields[0]) in (In.PLACE_ORDER, In.CANCEL_ORDER):
                    # The asker is gone; TWS still executes what it received.
                    client_id = connection.client_id or 0
                    try:
                        messages = self.exchange.handle(client_id, connection.version, fields)
                    except IbkrProtocolError as error:
                        self._note_malformed(error)
                        continue
                    self._route(None, messages)
            return sum(int(fields[0]) == In.PLACE_ORDER for _, fields in held)

        return self._in_trio_sync(release)

    @knob
    def lose_next_order_answer(self, drop_connection: bool = True) -> None:
        """Process the next placeOrder but let no answer about it reach the client.

        ``drop_connection``: its socket is cut (RST) before any answer goes
        out; else the socket stays and every unsolicited message about that
        order (openOrder, orderStatus, execDetails, commissionReport, errors)
        is withheld from then on. Either way the outcome is unknown to the
        client: the order exists (and may have filled); it learns so only by
        asking (reqOpenOrders, reqAllOpenOrders, reqExecutions, reqCompletedOrders).
        """
        self._in_trio_sync(lambda: self._faults.lose_answer.append(drop_connection))

    @knob
    def refuse_next_order(
        self, code: int = 201, text: str = "Order rejected - reason:refused by the local TWS"
    ) -> None:
        """Answer the next placeOrder with error ``code``/``text`` (counted in submissions)."""
        self.exchange.refuse_next_order(code, text)

    @knob
    def place_order(
        self,
        symbol: str,
        action: str,
        quantity: Decimal,
        *,
        order_type: str = "MKT",
        lmt_price: Decimal | None = None,
        aux_price: Decimal | None = None,
        tif: str = "DAY",
        client_id: int = 0,
        order_ref: str = "",
    ) -> int:
        """Place an order as another client would (``client_id`` 0: TWS itself); its order id.

        Its events go to that client's connections only, as TWS routes them;
        reqAllOpenOrders and reqExecutions show it to everyone.
        """
        con_id = self.exchange.con_id_of(symbol)

        def place() -> int:
            order_id, messages = self.exchange.place_direct(
                client_id,
                con_id,
                action,
                Decimal(quantity),
                order_type=order_type,
                lmt_price=None if lmt_price is None else Decimal(lmt_price),
                aux_price=None if aux_price is None else Decimal(aux_price),
                tif=tif,
                order_ref=order_ref,
            )
            self._route(None, messages)
            return order_id

        return self._in_trio_sync(place)

    @knob
    def correct_execution(self, exec_id: str, price: Decimal | None = None) -> str:
        """Publish IB's correction of an execution (execId ``...01`` -> ``...02``); its new execId."""

        def correct() -> str:
            messages = self.exchange.correct_execution(
                exec_id, None if price is None else Decimal(price)
            )
            self._route(None, messages)
            return (
                str(self.exchange.fills()[-1]["execId"]) if not messages else _exec_id_of(messages)
            )

        return self._in_trio_sync(correct)

    @knob
    def corrupt_next_message(self) -> None:
        """Send a truncated copy of the next outgoing message before it."""
        self._in_trio_sync(lambda: setattr(self._faults, "corrupt", self._faults.corrupt + 1))

    @knob
    def down(self) -> None:
        """Drop every API socket and refuse connections until :meth:`up` (admin stays up)."""
        self._in_trio(self._bring_down)

    @knob
    def up(self) -> None:
        """Listen again on the same port."""
        self._in_trio(self._bring_up)

    @knob
    def clear_faults(self) -> None:
        """Forget pending pacing, delays, duplicates, corruption and refusals; release holds."""

        def clear() -> None:
            self._faults.pacing = 0
            self._faults.pacing_placements_only = False
            self._faults.duplicate_executions = 0
            self._faults.corrupt = 0
            self._faults.delay_orders = 0
            self._faults.lose_answer.clear()
            self.exchange.clear_refusals()
            self._faults.hold_executions = False
            held, self._held_executions = self._held_executions, []
            self._route_all(held)

        self._in_trio_sync(clear)

    @admin_override("down")
    async def _down(self) -> None:
        await self._bring_down()

    @admin_override("up")
    async def _up(self) -> None:
        await self._bring_up()

    def _route_all(self, held: list[tuple[_Connection | None, Message]]) -> None:
        for origin, message in held:
            self._route(origin, [message])

    # -------------------------------------------------------- inspection

    def quote(self, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
        """``(bid, ask, last)`` now."""
        return self.exchange.quote(self.exchange.con_id_of(symbol))

    def orders(self) -> list[Json]:
        """Every order ever, in placement order (client id, order id, permId, status, ...)."""
        return self.exchange.orders()

    def fills(self) -> list[Json]:
        """Every execution, in order, with its execId and commission."""
        return self.exchange.fills()

    def positions(self) -> dict[str, Decimal]:
        """Signed position per local symbol, flat contracts left out."""
        return self.exchange.positions()

    def submissions(self) -> dict[str, int]:
        """How many placeOrder messages named each orderRef (refused ones too, modifies too)."""
        return self.exchange.submissions()

    def placements(self) -> dict[str, int]:
        """How many placeOrder messages per orderRef named an order id new to the account
        (refused ones included), not one it already had (a modification, even of a
        finished order): what "nothing placed twice" counts."""
        return self.exchange.placements()

    def account_values(self) -> dict[str, str]:
        """The account values reqAccountSummary answers (NetLiquidation, TotalCashValue, ...)."""
        return self.exchange.account_values()

    def malformed(self) -> int:
        """How many malformed, unknown or out-of-order messages the clients sent."""
        return self._malformed

    def requests(self) -> dict[int, int]:
        """Messages received per message id."""
        return dict(self._requests)

    def connections(self) -> list[Json]:
        """The API connections: client id and negotiated server version."""
        return self._in_trio_sync(
            lambda: [
                {"clientId": c.client_id, "serverVersion": c.version} for c in self._connections
            ]
        )

    def _pending_faults(self) -> Json:
        """The faults armed and what they hold: delayed placeOrders by orderRef, held messages."""
        held_orders = []
        for connection, fields in list(self._delayed):
            if int(fields[0]) != In.PLACE_ORDER:
                continue  # a later message of the same connection, held behind one
            try:
                held_orders.append(parse_place_order(fields, connection.version).order_ref)
            except IbkrProtocolError:
                held_orders.append("")
        return {
            **self._faults.describe(),
            "held_orders": held_orders,
            "held_executions": len(self._held_executions),
            "held_while_lost": len(self._held_while_lost),
            "muted_orders": sorted(self._muted),
        }

    def _state(self) -> Json:
        return {
            "up": self._is_up,
            "account": self.account,
            "positions": self.positions(),
            "orders": self.orders(),
            "fills": self.fills(),
            "submissions": self.submissions(),
            "placements": self.placements(),
            "account_values": self.account_values(),
            "faults": self._pending_faults(),
            "malformed": self._malformed,
        }

    def _admin_views(self) -> dict[str, Callable[[], Any]]:
        return {
            "state": self._state,
            "faults": self._pending_faults,
            "knobs": lambda: [knob.to_dict() for knob in KNOBS.values()],
        }


def _exec_id_of(messages: Sequence[Message]) -> str:
    """The execId an execDetails message carries (field 14, any version)."""
    return str(messages[0].build(0)[14])


def _lost() -> Message:
    return error_message(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")


def _request_id(message_id: int, fields: Sequence[str]) -> int:
    """The id an error about this request carries: the order id, request id or -1."""
    with contextlib.suppress(ValueError, IndexError):
        if message_id == In.PLACE_ORDER:
            return int(fields[1])
        if message_id in {
            In.CANCEL_ORDER,
            In.REQ_MKT_DATA,
            In.REQ_CONTRACT_DATA,
            In.REQ_EXECUTIONS,
        }:
            return int(fields[2])
    return -1


_KNOWN_REQUESTS = frozenset(
    {
        In.REQ_MKT_DATA,
        In.CANCEL_MKT_DATA,
        In.PLACE_ORDER,
        In.CANCEL_ORDER,
        In.REQ_OPEN_ORDERS,
        In.REQ_ACCT_DATA,
        In.REQ_EXECUTIONS,
        In.REQ_IDS,
        In.REQ_CONTRACT_DATA,
        In.REQ_AUTO_OPEN_ORDERS,
        In.REQ_ALL_OPEN_ORDERS,
        In.REQ_MANAGED_ACCTS,
        In.REQ_CURRENT_TIME,
        In.REQ_GLOBAL_CANCEL,
        In.REQ_MARKET_DATA_TYPE,
        In.REQ_POSITIONS,
        In.REQ_ACCOUNT_SUMMARY,
        In.CANCEL_ACCOUNT_SUMMARY,
        In.CANCEL_POSITIONS,
        In.START_API,
        In.REQ_ACCOUNT_UPDATES_MULTI,
        In.CANCEL_ACCOUNT_UPDATES_MULTI,
        In.REQ_COMPLETED_ORDERS,
    }
)

KNOBS: dict[str, Knob] = collect_knobs(IbkrVenue)
"""Every knob of :class:`IbkrVenue` by name: its Python method and its admin endpoint."""

IbkrVenue.KNOBS = KNOBS
