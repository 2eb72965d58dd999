"""Item 4: wire round trip against the local Binance venue, adapter vs bare httpx.

The adapter runs as the node runs it (``BinanceBroker`` under the
supervision runtime, connected and reconciled, its own trio thread and
REST through httpx's connection pool) but without the rest of the node: the benchmark plays
the breaker and the OMS with one probe actor. Per round trip: a
``BrokerRequest(SubmitOrder)`` for a 0.001 BTC market order is told to the
broker actor, and the time is taken when the broker's ``BrokerReply`` (sent
right after it has parsed the venue's answer and told the OMS
``OrderAccepted``) lands in the probe's mailbox.

The venue runs in a process of its own (``_binance.VenueProcess``), as an
exchange is on another machine; its own time is in both figures.

Floor, same venue, same run: the same order as one signed
``POST /api/v3/order`` on a keep-alive ``httpx.Client``, signature and JSON
parsing included. Round trips alternate (adapter, bare, bare, adapter, ...)
and each ends only once both brokers have handled the order's account events
(``_settle``), so no kind inherits another's background work.

Over the WebSocket API (issue #20), in the same run against the same venue
process: a second ``BinanceBroker`` with an Ed25519 key, its WebSocket API
connection logged on, places the same order as ``order.place`` on it; the
floor is a bare trio-websocket client (``_binance.BareWsClient``) logged on
the same way, sending the same ``order.place`` frame and timing it inside its
own trio thread. The four kinds of round trip take turns in a rotating order.

The adapter's figure holds three thread hops the bare client's does not (it is
timed inside its own trio thread): the request into the broker actor's mailbox,
the actor handing the order to its session's trio thread (``run_sync_soon``), and
the reply from that thread into the caller's mailbox. A fifth kind, in the same
rotation, times those three hops with no work at all (``Relay``): the floor of
"broker actor + trio session thread", reported as ``wire.ws_thread_hops.p50`` and
in the WebSocket figures' details, so what the adapter adds over the bare client
can be read as hops and work.

Over REST the design's floor is measured the same way, in the same rotation: the
adapter's I/O runs by design on trio, through httpx's own connection pool
(``httpcore``, which ``httpx.AsyncClient`` sends through; the bare floor is a
synchronous ``httpx.Client``), so a sixth kind (``RestDesign``) sends the same
signed order from a bare ``httpcore.AsyncConnectionPool`` on a trio thread of its own, reached
through the same three hops (``Relay`` hands a ``RestHop`` to the trio thread, whose
answer goes into the probe's mailbox): ``wire.submit_to_ack.design_floor`` is that
against the bare synchronous client, and ``wire.submit_to_ack.vs_design_floor`` the
adapter against it.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpcore
import trio

from tradenode.actors import BrokerReply, BrokerRequest, Outcome
from tradenode.brokers.binance import (
    BinanceBroker,
    BinanceCredentials,
    BinanceEndpoints,
    BinanceLink,
    Ed25519Credentials,
)
from tradenode.messages import OrderFilled, OrderType, Side, SubmitOrder
from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    ChildSpec,
    SupervisorSpec,
    TrioThread,
)
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET

from ._binance import (
    ED25519_API_KEY,
    BareClient,
    BareWsClient,
    Ed25519Key,
    _encode,
    local_venue,
    market_params,
)
from ._common import Options, perf_ns, result, summarize_ns, wait_until

NAME = "wire"


@dataclass(frozen=True, slots=True)
class Hop:
    """One trip through ``Relay``'s three thread hops."""

    n: int


@dataclass(frozen=True, slots=True)
class RestHop:
    """One signed market order for ``RestDesign``'s bare async client."""

    n: int
    client_order_id: str
    side: str


@dataclass(frozen=True, slots=True)
class RestDone:
    n: int
    answer: Any


class RestDesign:
    """A bare ``httpcore.AsyncConnectionPool`` (what ``httpx.AsyncClient`` sends through)
    on a trio thread of its own: one worker task sends each
    ``RestHop`` as the same signed ``POST /api/v3/order`` the bare client sends, and tells
    the probe the parsed answer. Nothing else: no pacing, no state, no parsing beyond JSON."""

    def __init__(self, rest_url: str) -> None:
        self.rest_url = rest_url
        self.thread = TrioThread("wire-rest-design")
        self.token: trio.lowlevel.TrioToken | None = None
        self.outbox: trio.MemorySendChannel[RestHop] | None = None
        self.probe: Address | None = None
        self.secret = DEFAULT_API_SECRET.encode()
        self.headers = {"X-MBX-APIKEY": DEFAULT_API_KEY}

    def start(self) -> None:
        self.thread.start(self._serve)

    def submit(self, hop: RestHop) -> None:
        assert self.token is not None and self.outbox is not None
        self.token.run_sync_soon(self.outbox.send_nowait, hop)

    async def _serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[RestHop](64)
        async with httpcore.AsyncConnectionPool() as client:
            self.token = trio.lowlevel.current_trio_token()
            self.outbox = send
            task_status.started()
            async for hop in receive:
                full = [
                    *market_params(hop.client_order_id, hop.side),
                    ("recvWindow", "5000"),
                    ("timestamp", str(time.time_ns() // 1_000_000)),
                ]
                query = _encode(full)
                signature = hmac.new(self.secret, query.encode(), hashlib.sha256).hexdigest()
                response = await client.request(
                    "POST",
                    f"{self.rest_url}/api/v3/order?{query}&signature={signature}",
                    headers=self.headers,
                )
                if response.status != 200:
                    raise RuntimeError(f"REST design floor: HTTP {response.status}")
                assert self.probe is not None
                self.probe.tell(RestDone(hop.n, json.loads(response.content)))

    async def _close(self) -> None:
        assert self.outbox is not None
        await self.outbox.aclose()

    def close(self) -> None:
        if self.outbox is not None:
            self.thread.run(self._close)
        self.thread.close()


class Relay(Actor):
    """The adapter's thread hops with no work: each ``Hop`` goes from this actor's
    mailbox to an idle trio thread (``run_sync_soon``, as the broker hands an order
    to its session) and from there into the probe's mailbox (as the session's
    reader tells the reply)."""

    def __init__(
        self, token: trio.lowlevel.TrioToken, probe: Address, rest_design: RestDesign
    ) -> None:
        self.token = token
        self.probe = probe
        self.rest_design = rest_design

    def receive(self, message: Any) -> Any:
        if isinstance(message, Hop):
            self.token.run_sync_soon(self.probe.tell, message)
        elif isinstance(message, RestHop):
            self.rest_design.submit(message)
        return None


async def _current_token() -> trio.lowlevel.TrioToken:
    return trio.lowlevel.current_trio_token()


class Probe(Actor):
    """Plays the breaker (gets ``BrokerReply``) and the OMS (gets the reports)."""

    def __init__(self) -> None:
        self.replies: dict[int, tuple[int, BrokerReply]] = {}
        self.filled: collections.Counter[str] = collections.Counter()
        self.hops: dict[int, int] = {}
        self.rest_design: dict[int, tuple[int, Any]] = {}
        self.changed = threading.Condition()

    def receive(self, message: Any) -> Any:
        now = perf_ns()
        with self.changed:
            if isinstance(message, BrokerReply):
                self.replies[message.seq] = (now, message)
            elif isinstance(message, OrderFilled):
                self.filled[message.client_order_id] += 1
            elif isinstance(message, Hop):
                self.hops[message.n] = now
            elif isinstance(message, RestDone):
                self.rest_design[message.n] = (now, message.answer)
            else:
                return None
            self.changed.notify_all()
        return None

    def wait(self, predicate: Any, timeout: float = 30.0) -> None:
        with self.changed:
            if not self.changed.wait_for(predicate, timeout):
                raise TimeoutError("the probe did not see what it waited for")


#: OrderFilled messages the probe gets per order: one from each broker's account stream.
FILLS_PER_ORDER = 2


def run(options: Options) -> list[dict[str, Any]]:
    count = options.wire_requests
    key = Ed25519Key()
    with local_venue() as venue:
        venue.register_ed25519(key)
        system = ActorSystem(name="wire")
        link, ws_link = BinanceLink(), BinanceLink()
        probes: list[Probe] = []
        endpoints = BinanceEndpoints(venue.rest_url, venue.ws_api_url, venue.stream_url)

        def probe_factory() -> Probe:
            probe = Probe()
            probes.append(probe)
            return probe

        def broker_factory() -> BinanceBroker:
            probe_address = system.lookup("/wire/probe")
            assert probe_address is not None
            return BinanceBroker(
                "binance",
                credentials=BinanceCredentials(DEFAULT_API_KEY, DEFAULT_API_SECRET),
                endpoints=endpoints,
                reports_to=probe_address,
                link=link,
                symbols=("BTCUSDT",),
            )

        def ws_broker_factory() -> BinanceBroker:
            probe_address = system.lookup("/wire/probe")
            assert probe_address is not None
            return BinanceBroker(
                "binance",
                credentials=Ed25519Credentials.from_pem(ED25519_API_KEY, key.private_pem),
                endpoints=endpoints,
                reports_to=probe_address,
                link=ws_link,
                symbols=("BTCUSDT",),
                order_entry="websocket",
            )

        hop_thread = TrioThread("wire-hops")
        hop_token = hop_thread.run(_current_token)
        rest_design = RestDesign(venue.rest_url)
        rest_design.start()

        def relay_factory() -> Relay:
            probe_address = system.lookup("/wire/probe")
            assert probe_address is not None
            return Relay(hop_token, probe_address, rest_design)

        system.start(
            SupervisorSpec(
                "wire",
                children=(
                    ChildSpec("probe", probe_factory),
                    ChildSpec("relay", relay_factory),
                    ChildSpec("broker", broker_factory),
                    ChildSpec("broker_ws", ws_broker_factory),
                ),
            )
        )
        bare = BareClient(venue.rest_url)
        bare_ws = BareWsClient(venue.ws_api_url, key)
        try:
            wait_until(
                lambda: link.reconciliations >= 1 and ws_link.reconciliations >= 1,
                30,
                "the adapters to connect",
            )
            broker = system.lookup("/wire/broker")
            ws_broker = system.lookup("/wire/broker_ws")
            probe_address = system.lookup("/wire/probe")
            relay = system.lookup("/wire/relay")
            assert broker is not None and ws_broker is not None and probe_address is not None
            assert relay is not None
            rest_design.probe = probe_address
            probe = probes[-1]
            bare_ws.__enter__()
            n = 0

            def _settle(coid: str) -> None:
                """Both brokers are on the same account, so each reads every order's
                events on its own stream, whoever placed it: a round is over once both
                have told the probe the order's fill (each does so exactly once; a FULL
                answer's fill stands for the stream's, which its broker then skips) and
                the system is quiescent (their actors have handled what their readers
                passed on). Waiting only for the first fill left the other broker's
                frames to be parsed during the next round: mostly a bare WebSocket round,
                as it follows the adapter's in the rotation, whose floor they raised."""
                probe.wait(lambda: probe.filled[coid] >= FILLS_PER_ORDER)
                system.wait_quiescent(30)

            def adapter_round_trip(target: Any = broker, tag: str = "A") -> int:
                nonlocal n
                n += 1
                coid = f"wire{tag}{n}"
                side = Side.BUY if n % 2 else Side.SELL
                order = SubmitOrder(
                    client_order_id=coid,
                    strategy_id="wire",
                    venue="binance",
                    symbol="BTCUSDT",
                    side=side,
                    order_type=OrderType.MARKET,
                    quantity=Decimal("0.001"),
                )
                started = perf_ns()
                target.tell(BrokerRequest(n, order, probe_address))
                probe.wait(lambda: n in probe.replies)
                at, reply = probe.replies[n]
                if reply.outcome is not Outcome.OK:
                    raise RuntimeError(f"adapter round trip {n}: {reply}")
                _settle(coid)
                return at - started

            def ws_adapter_round_trip() -> int:
                return adapter_round_trip(ws_broker, "W")

            def bare_round_trip() -> int:
                nonlocal n
                n += 1
                coid = f"wireB{n}"
                started = perf_ns()
                answer = bare.market_order(coid, "BUY" if n % 2 else "SELL")
                elapsed = perf_ns() - started
                if answer.get("status") != "FILLED":
                    raise RuntimeError(f"bare round trip {n}: {answer}")
                _settle(coid)
                return elapsed

            def bare_ws_round_trip() -> int:
                nonlocal n
                n += 1
                coid = f"wireS{n}"
                elapsed, answer = bare_ws.market_order(coid, "BUY" if n % 2 else "SELL")
                if answer.get("status") != 200 or answer["result"].get("status") != "FILLED":
                    raise RuntimeError(f"bare WebSocket round trip {n}: {answer}")
                _settle(coid)
                return elapsed

            def hops_round_trip() -> int:
                nonlocal n
                n += 1
                hop = n
                started = perf_ns()
                relay.tell(Hop(hop))
                probe.wait(lambda: hop in probe.hops)
                return probe.hops[hop] - started

            def rest_design_round_trip() -> int:
                nonlocal n
                n += 1
                hop = n
                coid = f"wireD{n}"
                started = perf_ns()
                relay.tell(RestHop(hop, coid, "BUY" if n % 2 else "SELL"))
                probe.wait(lambda: hop in probe.rest_design)
                at, answer = probe.rest_design[hop]
                if answer.get("status") != "FILLED":
                    raise RuntimeError(f"REST design floor round trip {n}: {answer}")
                _settle(coid)
                return at - started

            kinds = (
                adapter_round_trip,
                rest_design_round_trip,
                bare_round_trip,
                ws_adapter_round_trip,
                bare_ws_round_trip,
                hops_round_trip,
            )
            samples: dict[Any, list[int]] = {kind: [] for kind in kinds}
            for _ in range(20):  # warm every connection up
                for kind in kinds:
                    kind()
            for i in range(count):
                for j in range(len(kinds)):
                    kind = kinds[(i + j) % len(kinds)]
                    samples[kind].append(kind())
                time.sleep(0)
            ws_calls = venue.view("calls")
        finally:
            bare.close()
            if bare_ws.socket is not None:
                bare_ws.__exit__()
            system.shutdown(30)
            hop_thread.close()
            rest_design.close()
    node_stats, floor_stats = (
        summarize_ns(samples[adapter_round_trip]),
        summarize_ns(samples[bare_round_trip]),
    )
    ws_stats = summarize_ns(samples[ws_adapter_round_trip])
    ws_floor_stats = summarize_ns(samples[bare_ws_round_trip])
    hops_stats = summarize_ns(samples[hops_round_trip])
    design_stats = summarize_ns(samples[rest_design_round_trip])
    details = {
        "round_trips": count,
        "adapter_us": node_stats,
        "bare_httpx_us": floor_stats,
        "design_floor_us": design_stats,
    }
    ws_details = {
        "round_trips": count,
        "adapter_ws_us": ws_stats,
        "bare_ws_us": ws_floor_stats,
        "thread_hops_us": hops_stats,
        "adapter_rest_us": node_stats,
        "bare_httpx_us": floor_stats,
        "venue_calls": ws_calls,
    }
    notes = (
        "BrokerRequest(SubmitOrder) told to the BinanceBroker actor -> BrokerReply in the"
        " caller's mailbox; floor: the same signed POST /api/v3/order on a bare httpx.Client"
    )
    ws_notes = (
        "BrokerRequest(SubmitOrder) told to a BinanceBroker whose WebSocket API connection is"
        " logged on (Ed25519) -> order.place -> BrokerReply in the caller's mailbox; floor:"
        " the same order.place on a bare logged-on trio-websocket connection, timed in its"
        " own trio thread"
    )
    return [
        result(
            f"{NAME}.submit_to_ack.p50",
            "adapter submit -> acknowledgement p50 (local Binance, REST)",
            value=node_stats["p50"],
            unit="us",
            floor=floor_stats["p50"],
            target=("<=", 1.3, "ratio"),
            target_text="<= 1.3x bare httpx",
            notes=notes,
            details=details,
        ),
        result(
            f"{NAME}.submit_to_ack.p99",
            "adapter submit -> acknowledgement p99 (local Binance, REST)",
            value=node_stats["p99"],
            unit="us",
            floor=floor_stats["p99"],
            notes=notes,
            details=details,
        ),
        result(
            f"{NAME}.submit_to_ack.design_floor",
            "REST design floor p50: a bare httpcore pool on a trio thread through the"
            " adapter's three thread hops, vs the bare synchronous client",
            value=design_stats["p50"],
            unit="us",
            floor=floor_stats["p50"],
            notes="the least this design (actor + trio + httpx's connection pool) adds to a bare"
            " synchronous httpx client; same order, same venue, same rotation",
            details=details,
        ),
        result(
            f"{NAME}.submit_to_ack.vs_design_floor",
            "adapter submit -> acknowledgement p50 (REST) vs the design floor",
            value=node_stats["p50"],
            unit="us",
            floor=design_stats["p50"],
            notes="what the adapter's own work adds over the same hops and client",
            details=details,
        ),
        result(
            f"{NAME}.ws_submit_to_ack.p50",
            "adapter submit -> acknowledgement p50 (local Binance, WebSocket API)",
            value=ws_stats["p50"],
            unit="us",
            floor=ws_floor_stats["p50"],
            target=("<=", 1.3, "ratio"),
            target_text="<= 1.3x bare WebSocket client",
            notes=ws_notes,
            details=ws_details,
        ),
        result(
            f"{NAME}.ws_submit_to_ack.p99",
            "adapter submit -> acknowledgement p99 (local Binance, WebSocket API)",
            value=ws_stats["p99"],
            unit="us",
            floor=ws_floor_stats["p99"],
            notes=ws_notes,
            details=ws_details,
        ),
        result(
            f"{NAME}.ws_thread_hops.p50",
            "the adapter's three thread hops with no work (actor mailbox -> trio thread ->"
            " caller's mailbox), same run",
            value=hops_stats["p50"],
            unit="us",
            floor=None,
            notes="what the adapter's WebSocket figure holds and the bare client's does not:"
            " its floor is the bare client plus this",
            details=ws_details,
        ),
        result(
            f"{NAME}.ws_vs_rest.p50",
            "adapter submit -> acknowledgement p50: WebSocket API vs the adapter over REST",
            value=ws_stats["p50"],
            unit="us",
            floor=node_stats["p50"],
            notes="the same order through the same adapter over each API, same run",
            details=ws_details,
        ),
    ]
