"""The design's floor for a strategy's order over Binance's WebSocket API: the node's
threads and hops with no work in them, around a bare WebSocket client.

``bench_binance_ws`` compares a strategy in a node against a bare client timed
inside its own trio thread. The node's order, by design (supervised actors, each
on its own thread; adapter I/O on a trio thread), crosses seven thread hops the
bare client does not:

    strategy -> risk -> oms -> breaker -> broker -> trio thread  (order.place goes out)
    trio reader -(answer)-> oms -> strategy                      (and the reply to the breaker)

``WsDesignFloor`` is that path with nothing else: bare pykka ThreadingActors
(no supervision cell, no envelope, no state) passing a plain object, a broker
that hands it to an idle trio thread with ``run_sync_soon`` (as the adapter hands
an order to its session), a sender task writing the same ``order.place`` frame
on a logged-on trio-websocket connection, and a reader task that parses the
answer and tells the breaker a reply and the OMS the report, which the OMS passes
to the strategy. Timed in the strategy's thread, from the decision to the report,
as the node's figure is timed from ``ctx.submit_order`` to ``on_order_update``.

With ``durable`` set, the bare OMS also makes the intent durable before telling
the breaker, as the node's OMS does with a journal: one 100-byte ``pwrite`` over
zeros already in a file and an ``fdatasync`` (what the journal's commit does).

What it shows: how far above the bare client this design's own hops put any order,
measured in the same run; the node's figure divided by it is the node's work.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pykka
import trio
import trio_websocket

from tradenode.supervision import TrioThread

from . import _floor
from ._binance import ED25519_API_KEY, Ed25519Key
from ._common import journal_sync, perf_ns, wait_event


class _Order(_floor._Order):
    """An order for ``_floor``'s forwarding actors (risk, breaker), with its params."""

    __slots__ = ("params",)

    def __init__(self, params: Sequence[tuple[str, str]]) -> None:
        super().__init__(0)
        self.params = params


class _Report:
    __slots__ = ("answer",)

    def __init__(self, answer: Any) -> None:
        self.answer = answer


class _Reply:
    __slots__ = ()


class _Go:
    __slots__ = ("done", "params")

    def __init__(self, params: Sequence[tuple[str, str]]) -> None:
        self.params = params
        self.done = threading.Event()


class _Oms(pykka.ThreadingActor):
    """Orders to the breaker (after an fsync when ``durable``), reports to the strategy."""

    use_daemon_thread = True

    def __init__(self, durable: Path | None) -> None:
        super().__init__()
        self.breaker: pykka.ActorRef[Any] | None = None
        self.strategy: pykka.ActorRef[Any] | None = None
        self.fd: int | None = None
        self.offset = 0
        if durable is not None:
            self.fd = os.open(durable, os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(self.fd, bytes(1 << 20))
            os.fsync(self.fd)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Order):
            if self.fd is not None:
                os.pwrite(self.fd, b"x" * 100, self.offset)
                journal_sync(self.fd)
                self.offset = (self.offset + 100) % ((1 << 20) - 100)
            assert self.breaker is not None
            self.breaker.tell(message)
        elif isinstance(message, _Report):
            assert self.strategy is not None
            self.strategy.tell(message)
        return None

    def on_stop(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


class _Broker(pykka.ThreadingActor):
    """Hands each order to the trio thread, as the adapter hands it to its session."""

    use_daemon_thread = True

    def __init__(self, link: _Link) -> None:
        super().__init__()
        self.link = link

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Order):
            self.link.submit(message)
        return None


class _Strategy(pykka.ThreadingActor):
    """One order at a time: stamps the decision and the report."""

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.risk: pykka.ActorRef[Any] | None = None
        self.go: _Go | None = None
        self.started = 0
        self.elapsed = 0
        self.answer: Any = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Go):
            self.go = message
            self.started = perf_ns()
            assert self.risk is not None
            self.risk.tell(_Order(message.params))
        elif isinstance(message, _Report):
            self.elapsed = perf_ns() - self.started
            self.answer = message.answer
            assert self.go is not None
            self.go.done.set()
        return None


class _Link:
    """The trio thread: a logged-on connection, a sender and a reader."""

    def __init__(self, url: str, key: Ed25519Key, api_key: str) -> None:
        self.url = url
        self.key = key
        self.api_key = api_key
        self.ids = itertools.count(1)
        self.thread = TrioThread("design-floor-ws")
        self.token: trio.lowlevel.TrioToken | None = None
        self.outbox: trio.MemorySendChannel[_Order] | None = None
        self.closed = trio.Event()
        self.oms: pykka.ActorRef[Any] | None = None
        self.breaker: pykka.ActorRef[Any] | None = None

    def submit(self, order: _Order) -> None:
        assert self.token is not None and self.outbox is not None
        self.token.run_sync_soon(self.outbox.send_nowait, order)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[_Order](64)
        async with trio_websocket.open_websocket_url(self.url) as socket:
            stamp = str(time.time_ns() // 1_000_000)
            payload = f"apiKey={self.api_key}&timestamp={stamp}"
            await socket.send_message(
                json.dumps(
                    {
                        "id": "logon",
                        "method": "session.logon",
                        "params": {
                            "apiKey": self.api_key,
                            "timestamp": stamp,
                            "signature": self.key.sign(payload),
                        },
                    }
                )
            )
            answer = json.loads(await socket.get_message())
            if answer.get("status") != 200:
                raise RuntimeError(f"design floor session.logon refused: {answer}")
            self.token = trio.lowlevel.current_trio_token()
            self.outbox = send
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._send, socket, receive)
                nursery.start_soon(self._read, socket)
                task_status.started()
                await self.closed.wait()
                nursery.cancel_scope.cancel()

    async def _send(
        self,
        socket: trio_websocket.WebSocketConnection,
        orders: trio.MemoryReceiveChannel[_Order],
    ) -> None:
        async for order in orders:
            params = dict(order.params)
            params["timestamp"] = str(time.time_ns() // 1_000_000)
            frame = {"id": str(next(self.ids)), "method": "order.place", "params": params}
            await socket.send_message(json.dumps(frame))

    async def _read(self, socket: trio_websocket.WebSocketConnection) -> None:
        while True:
            answer = json.loads(await socket.get_message())
            assert self.breaker is not None and self.oms is not None
            self.breaker.tell(_Reply())
            self.oms.tell(_Report(answer))

    async def close(self) -> None:
        self.closed.set()


class WsDesignFloor:
    """The node's hops for one order over the WebSocket API, with no work in them."""

    def __init__(
        self,
        ws_api_url: str,
        key: Ed25519Key,
        *,
        durable: bool = False,
        api_key: str = ED25519_API_KEY,
    ) -> None:
        self.link = _Link(ws_api_url, key, api_key)
        self.tmp = tempfile.TemporaryDirectory() if durable else None
        self.durable = Path(self.tmp.name) / "intents" if self.tmp is not None else None
        self.actors: list[pykka.ActorRef[Any]] = []

    def __enter__(self) -> WsDesignFloor:
        self.link.thread.start(self.link.serve)
        strategy = _Strategy.start()
        risk = _floor._Forward.start()
        oms = _Oms.start(self.durable)
        breaker = _floor._Forward.start()
        broker = _Broker.start(self.link)
        self.actors = [strategy, risk, oms, breaker, broker]
        self.strategy = strategy
        strategy.proxy().risk = risk
        risk.proxy().next = oms
        oms_proxy: Any = oms.proxy()
        oms_proxy.breaker = breaker
        oms_proxy.strategy = strategy
        breaker.proxy().next = broker
        self.link.oms = oms
        self.link.breaker = breaker
        # Proxy attribute sets are asynchronous: make sure every one has landed.
        for ref in self.actors:
            ref.ask(None)
        return self

    def __exit__(self, *exc: object) -> None:
        for ref in self.actors:
            ref.stop()
        self.link.thread.run(self.link.close)
        self.link.thread.close()
        if self.tmp is not None:
            self.tmp.cleanup()

    def order(self, params: Sequence[tuple[str, str]]) -> tuple[int, Any]:
        """One order round the design's hops: (ns from the decision to the report at the
        strategy, the venue's answer)."""
        go = _Go(params)
        self.strategy.tell(go)
        wait_event(go.done, 60, "the design floor's order")
        state: Any = self.strategy.proxy()
        return state.elapsed.get(), state.answer.get()
