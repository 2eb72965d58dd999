"""A running node whose ``alpaca`` venue is the local fake Alpaca on loopback."""

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
from tradenode.brokers.alpaca import AlpacaLink
from tradenode.messages import OrderType, Side
from tradenode.supervision import EventRecorder, ManualClock, SupervisionEventKind
from tradenode.testing.campaign import VenueBooks
from tradenode.testing.campaign import VenueSettings as CampaignSettings
from tradenode.testing.conformance import VenueFill as CampaignFill
from tradenode.testing.conformance import VenueOrder as CampaignOrder
from tradenode.testing.venues import AlpacaVenue

from ._node_helpers import VenueHarness, broker_event

D = Decimal
K = SupervisionEventKind
BROKER = "/anode/brokers/alpaca/broker"

VENUE_CONFIG = """
node: {{name: anode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: alpaca
    kind: alpaca
    alpaca:
      environment: custom
      key_id: {key}
      secret_key: {secret}
      rest_url: {rest}
      stream_url: {stream}
      data_url: {data}
      symbols: [{symbols}]
      outside_session: {outside_session}
      extended_hours: {extended_hours}
      request_timeout: {request_timeout}
      check_interval: {check_interval}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class AlpacaHarness(VenueHarness[AlpacaLink, AlpacaVenue]):
    VENUE = "alpaca"
    LINK = AlpacaLink
    BROKER = BROKER


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return broker_event(BROKER, kind, generation)


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the node's manual clock (epoch ms): the market clock, activity
    times and X-Ratelimit-Reset agree with the node's."""
    return lambda: clock.time_ns() // 1_000_000


def data_base(venue: AlpacaVenue) -> str:
    """The market-data base URL (the adapter appends ``/v2/<feed>``)."""
    return venue.data_stream_url("iex").removesuffix("/v2/iex")


def node_config(
    venue: AlpacaVenue,
    *,
    symbols: tuple[str, ...] = ("AAPL", "MSFT"),
    outside_session: str = "deny",
    extended_hours: bool = False,
    request_timeout: float = 5.0,
    check_interval: float = 0.0,
) -> str:
    return VENUE_CONFIG.format(
        key=venue.api_key,
        secret=venue.secret,
        rest=venue.rest_url,
        stream=venue.stream_url,
        data=data_base(venue),
        symbols=", ".join(symbols),
        outside_session=outside_session,
        extended_hours=str(extended_hours).lower(),
        request_timeout=request_timeout,
        check_interval=check_interval,
    )


@contextmanager
def alpaca_node(
    venue: AlpacaVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    **config: Any,
) -> Iterator[AlpacaHarness]:
    clock = clock or ManualClock()
    node = Node(parse_config(node_config(venue, **config) + extra_yaml), clock=clock)
    supervision = EventRecorder()
    node.system.events.subscribe(supervision)
    node.start()
    try:
        yield AlpacaHarness(node, clock, venue, supervision)
    finally:
        node.stop(timeout=20)


def market(side: Side, qty: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(qty), venue="alpaca", **kw)


def limit(side: Side, price: str, qty: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(qty), order_type=OrderType.LIMIT, price=D(price), venue="alpaca", **kw
    )


# -- the out-of-process campaign ----------------------------------------------------------------

_TERMINAL_AT_ALPACA = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})
CAMPAIGN_SECRET_ENV = "ALPACA_CAMPAIGN_SECRET"


def execution_id(order_id: str, cumulative: Decimal) -> str:
    """The adapter's execution id, written out from Alpaca's own fields."""
    return f"alpaca-{order_id}-{format(cumulative.normalize(), 'f')}"


class AlpacaCampaignVenue:
    """``CampaignVenue`` for the local Alpaca: ``tradenode venue alpaca`` in another process.

    Faults go through its admin port (``POST <admin>/<knob>``), the books come back
    from ``GET <admin>/state``; nothing here imports the adapter. The regular session
    is forced open. Alpaca names no request time window: ``acceptance_window`` only
    scales the campaign's held placements (the venue acts on a held one after that
    many seconds at most), and an order of unknown outcome is looked up by client
    order id, never re-sent blindly. The secret reaches the venue and the node through
    the environment only.
    """

    name = "alpaca"

    def __init__(self, *, tick_interval: float = 0.05) -> None:
        self._tick_interval = tick_interval
        self._secret = f"campaign-secret-{os.getpid()}-{id(self):x}"
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._urls: dict[str, str] = {}
        self._http: httpx.Client | None = None
        self._timers: list[threading.Timer] = []

    @property
    def symbols(self) -> Mapping[str, str]:
        return {"AAPL": "AAPL"}

    @property
    def initial_balances(self) -> Mapping[str, Decimal]:
        return {"AAPL": Decimal(0)}

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._secret,)

    def start(self, workdir: Path, seed: int) -> Mapping[str, str]:
        args = [
            sys.executable,
            "-m",
            "tradenode",
            "venue",
            "alpaca",
            "--seed",
            str(seed % 1_000_000),
            "--tick-interval",
            str(self._tick_interval),
            "--market-open",
        ]
        self._log = (workdir / "venue.log").open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "TRADENODE_FAKE_ALPACA_SECRET": self._secret,
            },
        )
        assert self._process.stdout is not None
        line = _readline(self._process.stdout, timeout=60)
        if not line:
            self.stop()
            raise RuntimeError(f"the venue did not start: see {workdir / 'venue.log'}")
        self._urls = {k: str(v) for k, v in json.loads(line).items()}
        self._http = httpx.Client(base_url=self._urls["admin"], timeout=30)
        return self._urls

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
        return {CAMPAIGN_SECRET_ENV: self._secret}

    def draw_settings(self, rng: random.Random | None) -> CampaignSettings:
        timeout = 2.0 if rng is None else rng.choice((0.5, 1.0, 2.0, 3.0))
        return CampaignSettings(acceptance_window=2.0, fields={"request_timeout": timeout})

    def held_placement_settings(self) -> CampaignSettings:
        return CampaignSettings(acceptance_window=2.0, fields={"request_timeout": 1.0})

    def venue_config(self, settings: CampaignSettings) -> dict[str, Any]:
        data_url = self._urls["data_stream"].removesuffix("/v2/iex")
        return {
            "name": self.name,
            "kind": "alpaca",
            "alpaca": {
                "environment": "custom",
                "key_id": self._urls["api_key"],
                "secret_key": f"${{{CAMPAIGN_SECRET_ENV}}}",
                "rest_url": self._urls["rest"],
                "stream_url": self._urls["stream"],
                "data_url": data_url,
                "symbols": list(self.symbols),
                # Events the venue drops are found by the next check, not only at a restart.
                "check_interval": 1.0,
                **settings.fields,
            },
        }

    def _knob(self, name: str, **args: Any) -> Any:
        if self._http is None:
            raise RuntimeError("the campaign's Alpaca venue is not running")
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

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _for_a_while(self, rng: random.Random, name: str, undo: str, **args: Any) -> str:
        seconds = round(rng.uniform(0.3, 2.0), 2)
        done = self._describe(name, **args)
        self._later(seconds, undo)
        return f"{done}; {undo} after {seconds}s"

    def faults(self) -> Mapping[str, Callable[[random.Random], str]]:
        return {
            "drop_streams": lambda rng: self._describe("drop_streams"),
            "down": lambda rng: self._for_a_while(rng, "down", "up"),
            "duplicate_events": lambda rng: self._describe("duplicate_events", n=rng.randint(1, 4)),
            "drop_events": lambda rng: self._describe("drop_events", n=rng.randint(1, 2)),
            "reorder_events": lambda rng: self._for_a_while(
                rng, "reorder_events", "release_events", n=rng.randint(2, 4)
            ),
            "hold_fills": lambda rng: self._for_a_while(rng, "hold_fills", "release_fills"),
            "corrupt_next_event": lambda rng: self._describe(
                "corrupt_next_event", kind=rng.choice(("invalid_json", "missing_field"))
            ),
            "lose_next_order_answer": lambda rng: self._describe(
                "fail_requests", count=1, after=True, endpoints=["POST orders"]
            ),
            "fail_next_request": lambda rng: self._describe(
                "fail_requests", count=1, status=rng.choice((500, 503, 504))
            ),
            "rate_limit": lambda rng: self._describe(
                "rate_limit", count=rng.randint(1, 3), retry_after=1
            ),
            "price_jump": lambda rng: self._describe("step", n=rng.randint(3, 15)),
        }

    def hold_placements(self, seconds: float) -> str:
        """The venue holds the next placement ``seconds`` (wall time) before acting on it."""
        return self._describe("delay_requests", n=1, seconds=seconds, endpoints=["POST orders"])

    def placements_held(self) -> tuple[str, ...]:
        if self._http is None:
            raise RuntimeError("the campaign's Alpaca venue is not running")
        faults: dict[str, Any] = self._http.get("/faults").json()
        return tuple(
            str(held.get("client_order_id") or "")
            for held in faults.get("held", ())
            if held.get("endpoint") == "POST orders"
        )

    def clear_faults(self) -> None:
        self._cancel_timers()
        self._knob("clear_faults")
        self._knob("release_fills")
        self._knob("release_events")
        self._knob("up")

    def freeze_prices(self) -> None:
        self._knob("freeze_prices", frozen=True)

    def books(self) -> VenueBooks:
        if self._http is None:
            raise RuntimeError("the campaign's Alpaca venue is not running")
        state: dict[str, Any] = self._http.get("/state").json()
        orders = tuple(
            CampaignOrder(
                client_order_id=str(order["client_order_id"]),
                order_id=str(order["id"]),
                symbol=str(order["symbol"]),
                side=str(order["side"]).upper(),
                status=str(order["status"]),
                is_open=order["status"] not in _TERMINAL_AT_ALPACA,
                quantity=D(str(order["qty"] if order["qty"] is not None else order["filled_qty"])),
                filled_quantity=D(str(order["filled_qty"])),
            )
            for order in state["orders"]
        )
        fills = tuple(
            CampaignFill(
                execution_id=execution_id(str(fill["order_id"]), D(str(fill["cum_qty"]))),
                client_order_id=str(fill["client_order_id"]),
                order_id=str(fill["order_id"]),
                symbol=str(fill["symbol"]),
                side=str(fill["side"]).upper(),
                quantity=D(str(fill["qty"])),
                price=D(str(fill["price"])),
            )
            for fill in state["fills"]
        )
        balances = {symbol: D(str(qty)) for symbol, qty in state["positions"].items()}
        return VenueBooks(
            orders=orders,
            fills=fills,
            balances=balances,
            submissions={k: int(v) for k, v in state["submissions"].items()},
            calls={k: int(v) for k, v in state.get("calls", {}).items()},
        )


def _readline(stream: IO[str], *, timeout: float) -> str:
    """The first line of ``stream``, or "" if none came within ``timeout`` seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""
