"""A running node whose ``ibkr`` venue is the local TWS (``IbkrVenue``) on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx

from tradenode import Node, parse_config
from tradenode.actors import GetMetrics
from tradenode.brokers.ibkr import IbkrLink
from tradenode.messages import OrderType, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
)
from tradenode.testing.campaign import VenueBooks, VenueSettings
from tradenode.testing.conformance import VenueFill, VenueOrder
from tradenode.testing.venues import IbkrVenue

from ._node_helpers import VenueHarness, broker_event

D = Decimal
K = SupervisionEventKind
BROKER = "/inode/brokers/ibkr/broker"
CLIENT_ID = 7

#: Our symbol -> the local TWS's localSymbol (how its positions() names them).
LOCAL_SYMBOLS = {
    "AAPL": "AAPL",
    "EURUSD": "EUR.USD",
    "ESZ6": "ESZ6",
    "AAPL-C200": "AAPL  261218C00200000",
}

INSTRUMENTS = """
      instruments:
        AAPL: {sec_type: STK, symbol: AAPL, exchange: SMART, primary_exchange: NASDAQ}
        EURUSD: {sec_type: CASH, symbol: EUR, currency: USD, exchange: IDEALPRO}
        ESZ6: {sec_type: FUT, symbol: ES, exchange: CME, expiry: "202612", multiplier: "50"}
        AAPL-C200:
          sec_type: OPT
          symbol: AAPL
          expiry: "20261218"
          right: C
          strike: 200
          multiplier: "100"
"""

VENUE_CONFIG = """
node: {{name: inode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: ibkr
    kind: ibkr
    ibkr:
      host: {host}
      port: {port}
      client_id: {client_id}
      account: {account}
      request_timeout: {request_timeout}
      connect_timeout: 5
{instruments}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class IbkrHarness(VenueHarness[IbkrLink, IbkrVenue]):
    VENUE = "ibkr"
    LINK = IbkrLink
    BROKER = BROKER

    def venue_position(self, symbol: str) -> Decimal:
        return self.venue.positions().get(LOCAL_SYMBOLS[symbol], Decimal(0))


def assert_exactly_once(h: IbkrHarness) -> None:
    """Every execution the venue made reached the OMS once; positions equal the venue's;
    no orderRef was placed twice (new placements: a modification is not one)."""
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    at_venue = {str(f["execId"]).rsplit(".", 1)[0] for f in h.venue.fills()}
    assert set(executions) == at_venue
    for symbol in LOCAL_SYMBOLS:
        assert h.position(symbol) == h.venue_position(symbol), symbol
    placed = h.venue.placements()
    assert all(count == 1 for count in placed.values()), placed
    # Every status report the adapter made agreed with the fills the OMS had.
    assert h.node.oms.ask(GetMetrics())["drift_events"] == 0


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return broker_event(BROKER, kind, generation)


def node_config(
    venue: IbkrVenue,
    *,
    request_timeout: float = 5.0,
    instruments: str = INSTRUMENTS,
    client_id: int = CLIENT_ID,
) -> str:
    return VENUE_CONFIG.format(
        host=venue.host,
        port=venue.port,
        client_id=client_id,
        account=venue.account,
        request_timeout=request_timeout,
        instruments=instruments,
    )


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the node's manual clock (epoch ms)."""
    return lambda: clock.time_ns() // 1_000_000


@contextmanager
def ibkr_node(
    venue: IbkrVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    **config: Any,
) -> Iterator[IbkrHarness]:
    clock = clock or ManualClock()
    text = node_config(venue, **config) + extra_yaml
    node = Node(parse_config(text), clock=clock)
    supervision = EventRecorder()
    node.system.events.subscribe(supervision)
    node.start()
    try:
        yield IbkrHarness(node, clock, venue, supervision)
    finally:
        node.stop(timeout=20)


def market(side: Side, quantity: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(quantity), venue="ibkr", **kw)


def limit(side: Side, price: str, quantity: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(quantity), order_type=OrderType.LIMIT, price=D(price), venue="ibkr", **kw
    )


# -- the out-of-process campaign ----------------------------------------------------------------

_OPEN_AT_TWS = frozenset({"PreSubmitted", "Submitted", "PendingSubmit", "ApiPending"})
CAMPAIGN_CLIENT_ID = 21


class IbkrCampaignVenue:
    """``CampaignVenue`` for the local TWS: ``tradenode venue ibkr`` in another process.

    Faults go through its admin port (``POST <admin>/<knob>``), the books come
    back from ``GET <admin>/state``; nothing here imports the adapter. IB has no
    credentials in the node's config (the login lives in TWS) and no request
    time window: ``acceptance_window`` only scales the campaign's held placements
    (released by this object after that many seconds), and an order of unknown
    outcome is looked up by orderRef, never re-sent blindly.
    """

    name = "ibkr"

    def __init__(self, *, tick_interval: float = 0.05) -> None:
        self._tick_interval = tick_interval
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._urls: dict[str, str] = {}
        self._http: httpx.Client | None = None
        self._timers: list[threading.Timer] = []
        self._watchers: list[threading.Event] = []
        self._lock = threading.Lock()

    @property
    def symbols(self) -> Mapping[str, str]:
        return {"AAPL": "AAPL"}

    @property
    def initial_balances(self) -> Mapping[str, Decimal]:
        return {"AAPL": Decimal(0)}

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()

    def start(self, workdir: Path, seed: int) -> Mapping[str, str]:
        args = [
            sys.executable,
            "-m",
            "tradenode",
            "venue",
            "ibkr",
            "--seed",
            str(seed % 1_000_000),
            "--tick-interval",
            str(self._tick_interval),
            "--log-level",
            "INFO",
        ]
        self._log = (workdir / "venue.log").open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        line = _readline(self._process.stdout, timeout=60)
        if not line:
            self.stop()
            raise RuntimeError(f"the venue did not start: see {workdir / 'venue.log'}")
        self._urls = {k: str(v) for k, v in json.loads(line).items()}
        self._http = httpx.Client(base_url=self._urls["admin"], timeout=30)
        return self._urls

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for watcher in self._watchers:
            watcher.set()
        self._watchers.clear()

    def stop(self) -> None:
        self._cancel_timers()
        process, self._process = self._process, None
        if self._http is not None:
            self._http.close()
            self._http = None
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def node_environment(self) -> Mapping[str, str]:
        return {}

    def draw_settings(self, rng: random.Random | None) -> VenueSettings:
        if rng is None:
            return VenueSettings(acceptance_window=2.0, fields={"request_timeout": 2.0})
        request_timeout = rng.choice((0.5, 1.0, 2.0, 3.0))
        return VenueSettings(acceptance_window=2.0, fields={"request_timeout": request_timeout})

    def held_placement_settings(self) -> VenueSettings:
        return VenueSettings(acceptance_window=2.0, fields={"request_timeout": 1.0})

    def venue_config(self, settings: VenueSettings) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "ibkr",
            "ibkr": {
                "host": self._urls["host"],
                "port": int(self._urls["port"]),
                "client_id": CAMPAIGN_CLIENT_ID,
                "account": self._urls["account"],
                "pacing_backoff": 0.5,
                "connect_timeout": 3.0,
                # The drill's breaker admits 200 requests a second; the local TWS paces
                # only when told to (and ib_async itself stays below 45 messages a second).
                "message_rate_limit": 200,
                "instruments": {
                    "AAPL": {
                        "sec_type": "STK",
                        "symbol": "AAPL",
                        "exchange": "SMART",
                        "primary_exchange": "NASDAQ",
                    }
                },
                **settings.fields,
            },
        }

    def _knob(self, name: str, **args: Any) -> Any:
        if self._http is None:
            raise RuntimeError("the campaign's IB venue is not running")
        answer = self._http.post(f"/{name}", json=args)
        if answer.status_code != 200:
            raise RuntimeError(f"admin {name}({args}): {answer.status_code} {answer.text}")
        return answer.json().get("result")

    def _describe(self, name: str, **args: Any) -> str:
        result = self._knob(name, **args)
        shown = ", ".join(f"{key}={value!r}" for key, value in args.items())
        return f"{name}({shown})" + ("" if result is None else f" -> {result}")

    def _later(self, seconds: float, name: str) -> None:
        def fire() -> None:
            with contextlib.suppress(Exception):
                self._knob(name)

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _lose_ib(self, rng: random.Random) -> str:
        seconds = round(rng.uniform(0.3, 2.0), 2)
        lost = self._describe("connectivity_lost")
        self._later(seconds, "connectivity_restored")
        return f"{lost}; 1102 after {seconds}s"

    def _down(self, rng: random.Random) -> str:
        seconds = round(rng.uniform(0.3, 2.0), 2)
        down = self._describe("down")
        self._later(seconds, "up")
        return f"{down}; up after {seconds}s"

    def _hold_executions(self, rng: random.Random) -> str:
        seconds = round(rng.uniform(0.2, 1.5), 2)
        held = self._describe("hold_executions")
        self._later(seconds, "release_executions")
        return f"{held}; released after {seconds}s"

    def faults(self) -> Mapping[str, Callable[[random.Random], str]]:
        return {
            "drop_connections": lambda rng: self._describe("drop_connections"),
            "connectivity_lost": self._lose_ib,
            "down": self._down,
            "duplicate_executions": lambda rng: self._describe(
                "duplicate_executions", count=rng.randint(1, 4)
            ),
            "hold_executions": self._hold_executions,
            "pacing_violation": lambda rng: self._describe(
                "pacing_violation", count=rng.randint(1, 3)
            ),
            "corrupt_next_message": lambda rng: self._describe("corrupt_next_message"),
            "lose_next_order_answer": lambda rng: self._describe("lose_next_order_answer"),
            "price_jump": lambda rng: self._describe("step", n=rng.randint(3, 15)),
        }

    def hold_placements(self, seconds: float) -> str:
        """The local TWS holds a placement until told; the hold lasts ``seconds`` from
        the moment the placement arrives (watched on the admin port)."""
        held = self._describe("delay_orders", count=1)
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    if self.placements_held():
                        break
                stop.wait(0.01)
            if not stop.wait(seconds):
                with contextlib.suppress(Exception):
                    self._knob("release_orders")

        watcher = threading.Thread(target=watch, daemon=True)
        self._watchers.append(stop)
        watcher.start()
        return f"{held}; released {seconds}s after it arrives"

    def placements_held(self) -> tuple[str, ...]:
        if self._http is None:
            raise RuntimeError("the campaign's IB venue is not running")
        faults: dict[str, Any] = self._http.get("/faults").json()
        held = faults.get("held_orders")
        if held is None:
            # Only a count: the held placements are not named.
            return ("",) * int(faults.get("held", 0) or 0)
        return tuple(str(ref) for ref in held)

    def clear_faults(self) -> None:
        self._cancel_timers()
        # Held placements are acted on, never dropped: TWS has them.
        self._knob("release_orders")
        self._knob("clear_faults")
        self._knob("release_executions")
        with contextlib.suppress(RuntimeError):
            self._knob("connectivity_restored")
        self._knob("up")

    def freeze_prices(self) -> None:
        self._knob("freeze_prices", frozen=True)

    def books(self) -> VenueBooks:
        if self._http is None:
            raise RuntimeError("the campaign's IB venue is not running")
        state: dict[str, Any] = self._http.get("/state").json()
        orders = tuple(
            VenueOrder(
                client_order_id=str(order["orderRef"]),
                order_id=str(order["orderId"]),
                symbol=str(order["symbol"]),
                side="BUY" if order["action"] == "BUY" else "SELL",
                status=str(order["status"]),
                is_open=order["status"] in _OPEN_AT_TWS,
                quantity=Decimal(str(order["totalQuantity"])),
                filled_quantity=Decimal(str(order["filled"])),
            )
            for order in state["orders"]
        )
        fills = tuple(
            VenueFill(
                execution_id=str(fill["execId"]).rsplit(".", 1)[0],
                client_order_id=str(fill["orderRef"]),
                order_id=str(fill["orderId"]),
                symbol="AAPL" if fill["conId"] == 265598 else str(fill["conId"]),
                side="BUY" if fill["side"] in ("BOT", "BUY") else "SELL",
                quantity=Decimal(str(fill["shares"])),
                price=Decimal(str(fill["price"])),
            )
            for fill in state["fills"]
        )
        balances = {symbol: Decimal(str(qty)) for symbol, qty in state["positions"].items()}
        return VenueBooks(
            orders=orders,
            fills=fills,
            balances=balances,
            submissions={k: int(v) for k, v in state["placements"].items()},
        )


def _readline(stream: IO[str], *, timeout: float) -> str:
    """The first line of ``stream``, or "" if none came within ``timeout`` seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""
