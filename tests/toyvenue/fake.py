"""A tiny fake toy venue on loopback: the matching simulator behind the toy wire protocol.

It never imports the adapter: it speaks the protocol from its own side
(see ``tests/toyvenue/_codec.py`` for the frames), so the adapter is tested
against what it would meet on the wire. One thread accepts, one thread
per connection reads; every request and every knob runs under one lock,
so the books, the answers and the pushed events are in one order.

Fault knobs: :meth:`busy_next` (the toy's 429: ``BUSY`` with ``retry_after``),
:meth:`corrupt_next_event`, :meth:`drop_stream_mid_fill`,
:meth:`lose_next_submit_response` (accepted, never answered),
:meth:`drop_connections`, :meth:`refuse_connections`, and
:meth:`place_order` (an order placed at the venue by someone else).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import string
import sys
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tradenode.messages import OrderType, Side, TimeInForce
from tradenode.sim import (
    InstrumentSpec,
    MatchingSimulator,
    SimAccepted,
    SimAmended,
    SimCanceled,
    SimExpired,
    SimFill,
    SimOrder,
    SimQuote,
    SimRejected,
    SimTriggered,
    default_instruments,
    paper_sim_config,
)

__all__ = ["DEFAULT_API_KEY", "ToyVenue"]

DEFAULT_API_KEY = "toy-key-0123456789"

INSTRUMENTS = default_instruments()
_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")
_ID_LENGTH = 32
_MAX_LOTS = 10**7
"""The largest order, in minimum quantities (as a venue's maxQty filter)."""


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.logged_on = False
        self.closed = False

    def send(self, frame: Mapping[str, Any]) -> None:
        self.send_raw(json.dumps(frame, separators=(",", ":")).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()


class ToyVenue:
    """Start with :meth:`start` (or as a context manager); ``host`` and ``port`` then
    say where it listens. ``clock`` is wall time in ns, shared with the node in tests."""

    def __init__(
        self,
        *,
        clock: Callable[[], int],
        api_key: str = DEFAULT_API_KEY,
        seed: int = 7,
        balances: Mapping[str, Decimal] | None = None,
    ) -> None:
        config = paper_sim_config(allow_short=False)
        # A spot account; the touch sits on the last price (no spread), so a
        # resting order fills as soon as the last price reaches it.
        instruments = tuple(dataclasses.replace(i, spread_bps=Decimal(0)) for i in INSTRUMENTS)
        config = dataclasses.replace(
            config, instruments=instruments, balances={**config.balances, **(balances or {})}
        )
        self._sim = MatchingSimulator(config, seed=seed, clock=clock)
        self.initial_balances = {a: b.total for a, b in self._sim.balances().items()}
        self._clock = clock
        self._api_key = api_key
        self._lock = threading.RLock()
        self._connections: list[_Connection] = []
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.calls: list[str] = []
        """Every request op received, in order (log on included)."""
        self.submissions: dict[str, int] = {}
        """Per client order id, the placements that reached the venue (refused ones
        included; a ``BUSY`` answer is given before the venue reads the request)."""
        self._placed: dict[str, None] = {}
        self._busy: list[float] = []
        self._corrupt = 0
        self._drop_mid_fill = False
        self._lose_submit = 0
        self._refuse = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> ToyVenue:
        listener = socket.create_server((self.host, 0))
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept, listener)
        return self

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self.drop_connections()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> ToyVenue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="toy-venue")
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            connection = _Connection(sock)
            with self._lock:
                if self._refuse:
                    connection.close()
                    continue
                self._connections.append(connection)
            self._spawn(self._serve, connection)

    def _serve(self, connection: _Connection) -> None:
        reader = connection.sock.makefile("rb")
        try:
            for line in reader:
                with self._lock:
                    if connection.closed:
                        return
                    self._on_line(connection, line)
        except (OSError, ValueError):
            pass  # the connection was dropped under the reader
        finally:
            with self._lock:
                connection.close()
                if connection in self._connections:
                    self._connections.remove(connection)

    # -- knobs ------------------------------------------------------------------------------

    def busy_next(self, count: int = 1, *, retry_after: float = 2.0) -> None:
        """Answer the next ``count`` requests ``BUSY`` (not processed), retry after N s."""
        with self._lock:
            self._busy.extend([retry_after] * count)

    def corrupt_next_event(self) -> None:
        """Push one unreadable line before the next batch of events."""
        with self._lock:
            self._corrupt += 1

    def drop_stream_mid_fill(self) -> None:
        """The next batch of events with a fill in it is cut after its first fill:
        every connection drops there (what followed, and any answer, is lost)."""
        with self._lock:
            self._drop_mid_fill = True

    def lose_next_submit_response(self) -> None:
        """The next submit is processed (the order exists) but never answered."""
        with self._lock:
            self._lose_submit += 1

    def drop_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
            for connection in connections:
                connection.close()

    def refuse_connections(self, refuse: bool = True) -> None:
        with self._lock:
            self._refuse = refuse

    def place_order(
        self,
        client_order_id: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        *,
        price: Decimal | None = None,
    ) -> SimOrder:
        """Another client's order (MARKET, or LIMIT GTC at ``price``): the node never sent it."""
        with self._lock:
            events = self._sim.submit(
                client_order_id,
                symbol,
                side,
                OrderType.MARKET if price is None else OrderType.LIMIT,
                quantity,
                price=price,
            )
            if isinstance(events[0], SimRejected):
                raise ValueError(f"the venue refused {client_order_id}: {events[0].reason}")
            self._placed[client_order_id] = None
            self._publish(events)
            order = self._sim.order(client_order_id)
            assert order is not None
            return order

    # -- the market ---------------------------------------------------------------------------

    def step(self, symbol: str | None = None) -> None:
        with self._lock:
            self._publish([*self._sim.step(symbol), *self._quotes(symbol)])

    def set_price(self, symbol: str, price: Decimal) -> None:
        with self._lock:
            self._publish([*self._sim.set_price(symbol, price), *self._quotes(symbol)])

    def _quotes(self, symbol: str | None) -> list[SimQuote]:
        symbols = [symbol] if symbol else [spec.symbol for spec in INSTRUMENTS]
        return [self._sim.quote(s) for s in symbols]

    # -- the books, read as a third party ------------------------------------------------------

    def order(self, client_order_id: str) -> SimOrder | None:
        with self._lock:
            return self._sim.order(client_order_id)

    def instruments(self) -> tuple[InstrumentSpec, ...]:
        return self._sim.config.instruments

    def orders(self) -> list[SimOrder]:
        """Every order the venue took, in the order it took them."""
        with self._lock:
            found = (self._sim.order(cid) for cid in self._placed)
            return [order for order in found if order is not None]

    def open_orders(self) -> list[SimOrder]:
        with self._lock:
            return self._sim.open_orders()

    def fills(self, client_order_id: str | None = None) -> list[SimFill]:
        with self._lock:
            return [
                f
                for f in self._sim.fills()
                if client_order_id is None or f.client_order_id == client_order_id
            ]

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        with self._lock:
            return {a: (b.free, b.locked) for a, b in self._sim.balances().items()}

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    # -- requests -------------------------------------------------------------------------------

    def _on_line(self, connection: _Connection, line: bytes) -> None:
        try:
            request = json.loads(line)
            request_id, op = request["id"], request["op"]
        except (ValueError, KeyError, TypeError):
            connection.close()  # a client that cannot speak the protocol is cut off
            return
        self.calls.append(op)
        if op == "login":
            if request.get("key") != self._api_key:
                connection.send({"id": request_id, **_err("AUTH", "invalid api key")})
                connection.close()
                return
            connection.logged_on = True
            connection.send({"id": request_id, "ok": {"account": "toy"}})
            return
        if not connection.logged_on:
            connection.send({"id": request_id, **_err("AUTH", "log on first")})
            return
        if self._busy:
            retry_after = self._busy.pop(0)
            error = _err("BUSY", f"busy, retry after {retry_after:g} s", retry_after)
            connection.send({"id": request_id, **error})
            return
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            connection.send({"id": request_id, **_err("UNKNOWN_OP", op)})
            return
        try:
            answer = handler(request)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            answer = _err("BAD_REQUEST", f"{type(exc).__name__}: {exc}")
        if op == "submit" and self._lose_submit and "err" not in answer:
            self._lose_submit -= 1
            return
        if not connection.closed:
            connection.send({"id": request_id, **answer})

    def _op_submit(self, request: dict[str, Any]) -> dict[str, Any]:
        order = request["order"]
        cid = order["cid"]
        self.submissions[cid] = self.submissions.get(cid, 0) + 1
        if not (0 < len(cid) <= _ID_LENGTH and set(cid) <= _ID_CHARACTERS):
            return _err("BAD_CLIENT_ID", f"client order id {cid!r} is not [A-Za-z0-9_-]{{1,32}}")
        spec = next((i for i in INSTRUMENTS if i.symbol == order["symbol"]), None)
        if spec is not None and Decimal(order["qty"]) > spec.min_quantity * _MAX_LOTS:
            return _err("MAX_QUANTITY", f"quantity above {spec.min_quantity * _MAX_LOTS}")
        now_ms = self._clock() // 1_000_000
        if now_ms - int(request["ts"]) > int(request["window"]):
            return _err("STALE", "request older than its window")
        events = self._sim.submit(
            cid,
            order["symbol"],
            Side(order["side"]),
            OrderType(order["type"]),
            Decimal(order["qty"]),
            price=Decimal(order["price"]) if "price" in order else None,
            time_in_force=TimeInForce(order.get("tif", "GTC")),
            post_only=bool(order.get("post_only", False)),
        )
        return self._answer(cid, events)

    def _op_cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._answer(request["cid"], self._sim.cancel(request["cid"]))

    def _op_amend(self, request: dict[str, Any]) -> dict[str, Any]:
        events = self._sim.amend(
            request["cid"],
            quantity=Decimal(request["qty"]) if "qty" in request else None,
            price=Decimal(request["price"]) if "price" in request else None,
        )
        return self._answer(request["cid"], events)

    def _op_query(self, request: dict[str, Any]) -> dict[str, Any]:
        order = self._sim.order(request["cid"])
        if order is None:
            return _err("NOT_FOUND", f"no order {request['cid']}")
        fills = [_fill(f) for f in self._sim.fills() if f.client_order_id == order.client_order_id]
        return {"ok": {"order": _order(order), "fills": fills}}

    def _op_cancel_all(self, request: dict[str, Any]) -> dict[str, Any]:
        events = self._sim.cancel_all(request.get("symbol"))
        self._publish(events)
        canceled = [self._sim.order(e.client_order_id) for e in events]
        return {"ok": {"orders": [_order(o) for o in canceled if o is not None]}}

    def _op_open_orders(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": {"orders": [_order(o) for o in self._sim.open_orders()]}}

    def _op_fills(self, request: dict[str, Any]) -> dict[str, Any]:
        fills = self._sim.fills(after_trade_id=request.get("after"))
        return {"ok": {"fills": [_fill(f) for f in fills]}}

    def _op_orders(self, request: dict[str, Any]) -> dict[str, Any]:
        found = (self._sim.order(cid) for cid in request["cids"])
        return {"ok": {"orders": [_order(o) for o in found if o is not None]}}

    def _op_balances(self, request: dict[str, Any]) -> dict[str, Any]:
        rows = {
            asset: {"free": str(b.free), "locked": str(b.locked)}
            for asset, b in self._sim.balances().items()
        }
        return {"ok": {"balances": rows}}

    def _op_instruments(self, request: dict[str, Any]) -> dict[str, Any]:
        rows = [
            {"symbol": s.symbol, "base": s.base_asset, "quote": s.quote_asset}
            for s in self._sim.config.instruments
        ]
        return {"ok": {"instruments": rows}}

    def _answer(self, cid: str, events: list[Any]) -> dict[str, Any]:
        refusal = next((e for e in events if isinstance(e, SimRejected)), None)
        if refusal is not None:
            return _err(refusal.code.value, refusal.reason)
        self._placed[cid] = None
        self._publish(events)
        order = self._sim.order(cid)
        assert order is not None
        return {"ok": {"order": _order(order)}}

    # -- the stream -------------------------------------------------------------------------------

    def _publish(self, events: list[Any]) -> None:
        frames = [frame for frame in map(self._event, events) if frame is not None]
        if not frames:
            return
        lines = [json.dumps(f, separators=(",", ":")).encode() + b"\n" for f in frames]
        if self._corrupt:
            self._corrupt -= 1
            lines.insert(0, b'{"ev": "fill", "fill": {"tid": "garbage"\n')
        cut = None
        if self._drop_mid_fill:
            cut = next((i for i, f in enumerate(frames) if f["ev"] == "fill"), None)
            if cut is not None:
                self._drop_mid_fill = False
                lines = lines[: len(lines) - len(frames) + cut + 1]
        for connection in list(self._connections):
            if connection.logged_on:
                connection.send_raw(b"".join(lines))
        if cut is not None:
            self.drop_connections()

    def _event(self, event: Any) -> dict[str, Any] | None:
        if isinstance(event, SimFill):
            return {"ev": "fill", "fill": _fill(event)}
        if isinstance(event, SimQuote):
            return {
                "ev": "quote",
                "symbol": event.symbol,
                "bid": str(event.bid),
                "ask": str(event.ask),
                "last": str(event.last),
                "ts": event.ts_ns,
            }
        kinds = {
            SimAccepted: "accepted",
            SimCanceled: "canceled",
            SimExpired: "expired",
            SimAmended: "amended",
        }
        kind = kinds.get(type(event))
        if kind is None:
            assert isinstance(event, SimTriggered | SimRejected), event
            return None
        order = self._sim.order(event.client_order_id)
        assert order is not None
        # The order as this event left it (a later event of the batch may change it).
        if isinstance(event, SimAccepted):
            snapshot = {"status": "NEW", "filled": "0", "avg": None}
        else:
            snapshot = {}
        return {"ev": kind, "order": {**_order(order), **snapshot, "ts": event.ts_ns}}


def _err(code: str, msg: str, retry_after: float | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "msg": msg}
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"err": error}


def _order(order: SimOrder) -> dict[str, Any]:
    return {
        "cid": order.client_order_id,
        "oid": order.venue_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.order_type.value,
        "qty": str(order.quantity),
        "filled": str(order.filled_quantity),
        "price": None if order.price is None else str(order.price),
        "avg": None if order.avg_fill_price is None else str(order.avg_fill_price),
        "status": order.status.value,
        "ts": order.updated_ns,
    }


def _fill(fill: SimFill) -> dict[str, Any]:
    return {
        "tid": fill.trade_id,
        "cid": fill.client_order_id,
        "oid": fill.venue_order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": str(fill.quantity),
        "price": str(fill.price),
        "fee": str(fill.commission),
        "fee_asset": fill.commission_asset,
        "maker": fill.is_maker,
        "leaves": str(fill.leaves_quantity),
        "ts": fill.ts_ns,
    }


def _command() -> Any:
    """The toy's ``tradenode venue`` command, built on first use so that importing
    the fake does not need click."""
    import click

    @click.command("toy")
    @click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
    def toy(seed: int) -> None:
        """Serve the toy venue on loopback until stdin closes; print one JSON line first."""
        with ToyVenue(clock=time.time_ns, seed=seed) as venue:
            click.echo(json.dumps({"host": venue.host, "port": venue.port}))
            sys.stdin.read()

    return toy


command = _command()
"""Registered under ``tradenode.venue_commands`` by the toy's distribution."""
