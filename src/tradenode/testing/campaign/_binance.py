"""The campaign's Binance venue: ``tradenode venue binance`` in another process.

Faults go through the venue's admin port (``POST <admin>/<knob>``, the
knobs of :class:`tradenode.testing.venues.BinanceVenue` under the same
names), the books come back from ``GET <admin>/state``. Nothing here
imports the Binance adapter: the venue is driven as a third party would.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx

from ._venue import FaultAction, VenueBooks, VenueFill, VenueOrder, VenueSettings

__all__ = ["PLACEMENTS", "BinanceCampaignVenue"]

PLACEMENTS = ("POST order", "order.place", "POST order/cancelReplace", "order.cancelReplace")
"""Requests that place an order, as the venue's request faults name them (REST and WS API)."""

_QUERIES = ("GET order", "order.status", "GET openOrders", "GET myTrades", "GET account")
_CORRUPTIONS = ("invalid_json", "unknown_event", "missing_field")
_OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
_KEY_ENV = "CAMPAIGN_BINANCE_KEY"
_SECRET_ENV = "CAMPAIGN_BINANCE_SECRET"


class BinanceCampaignVenue:
    """:class:`~tradenode.testing.campaign.CampaignVenue` for Binance Spot (the local venue).

    The API secret is fresh for every instance and travels only through
    environment variables (the venue's ``TRADENODE_FAKE_BINANCE_SECRET``,
    the node's ``${CAMPAIGN_BINANCE_SECRET}``), so the drill can prove no
    file it produced holds it. ``tick_interval`` is how often the venue
    moves prices by itself.
    """

    name = "binance"

    def __init__(
        self,
        *,
        symbols: Mapping[str, str] | None = None,
        balances: Mapping[str, Decimal] | None = None,
        tick_interval: float = 0.02,
    ) -> None:
        self._symbols = dict(symbols or {"BTCUSDT": "BTC", "ETHUSDT": "ETH"})
        self._balances = dict(
            balances or {"USDT": Decimal(1_000_000), "BTC": Decimal(10), "ETH": Decimal(100)}
        )
        self._tick_interval = tick_interval
        self._key = "campaign-key"
        # Not drawn from the seed: it decides nothing, and it must never be guessable
        # from a name in a log.
        self._secret = f"campaign-secret-{secrets.token_hex(16)}"
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._urls: dict[str, str] = {}
        self._http: httpx.Client | None = None

    # ------------------------------------------------------------ identity

    @property
    def symbols(self) -> Mapping[str, str]:
        return self._symbols

    @property
    def initial_balances(self) -> Mapping[str, Decimal]:
        return self._balances

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._secret,)

    @property
    def urls(self) -> Mapping[str, str]:
        return self._urls

    # ----------------------------------------------------------- lifecycle

    def start(self, workdir: Path, seed: int) -> Mapping[str, str]:
        if self._process is not None:
            raise RuntimeError("the campaign's Binance venue is already running")
        args = [
            sys.executable,
            "-m",
            "tradenode",
            "venue",
            "binance",
            "--api-key",
            self._key,
            "--seed",
            str(seed % 1_000_000),
            "--tick-interval",
            str(self._tick_interval),
            # A client that ignores a 429's Retry-After is banned, as on Binance, but
            # briefly: a two-minute ban would stall every later incarnation.
            "--ban-seconds",
            "3",
            "--log-level",
            "INFO",
        ]
        for asset, amount in self._balances.items():
            args += ["--balance", f"{asset}={amount}"]
        self._log = (workdir / "venue.log").open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "TRADENODE_FAKE_BINANCE_SECRET": self._secret,
            },
        )
        assert self._process.stdout is not None
        line = _readline(self._process.stdout, timeout=60)
        if not line:
            self.stop()
            raise RuntimeError(f"the venue did not start: see {workdir / 'venue.log'}")
        self._urls = json.loads(line)
        self._http = httpx.Client(base_url=self._urls["admin"], timeout=30)
        return self._urls

    def stop(self) -> None:
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

    # ---------------------------------------------------------- node side

    def node_environment(self) -> Mapping[str, str]:
        return {_KEY_ENV: self._key, _SECRET_ENV: self._secret}

    def draw_settings(self, rng: random.Random | None) -> VenueSettings:
        if rng is None:
            return _settings(5000, 10.0)
        recv_window_ms = rng.choice((1500, 2500, 3000, 5000))
        window = recv_window_ms / 1000
        # Half the time an HTTP timeout shorter than the acceptance window: the
        # node gives up on a request the venue may still act on (the mix that
        # once doubled orders).
        if rng.random() < 0.5:
            request_timeout = round(rng.uniform(0.4, 0.9) * window, 2)
        else:
            request_timeout = round(rng.uniform(1.0, 2.0) * window, 2)
        return _settings(recv_window_ms, request_timeout)

    def held_placement_settings(self) -> VenueSettings:
        return _settings(5000, 10.0)

    def venue_config(self, settings: VenueSettings) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "binance",
            "binance": {
                "environment": "custom",
                "api_key": f"${{{_KEY_ENV}}}",
                "api_secret": f"${{{_SECRET_ENV}}}",
                "rest_url": self._urls["rest"],
                "ws_api_url": self._urls["ws_api"],
                "stream_url": self._urls["stream"],
                "symbols": list(self._symbols),
                **settings.fields,
            },
        }

    # -------------------------------------------------------------- faults

    def _knob(self, name: str, **args: Any) -> Any:
        if self._http is None:
            raise RuntimeError("the campaign's Binance venue is not running")
        answer = self._http.post(f"/{name}", json=args)
        if answer.status_code != 200:
            raise RuntimeError(f"admin {name}({args}): {answer.status_code} {answer.text}")
        return answer.json()["result"]

    def _describe(self, name: str, **args: Any) -> str:
        result = self._knob(name, **args)
        shown = ", ".join(f"{key}={value!r}" for key, value in args.items())
        return f"{name}({shown})" + ("" if result is None else f" -> {result}")

    def faults(self) -> Mapping[str, FaultAction]:
        def endpoints(rng: random.Random) -> list[str] | None:
            choice = rng.choice(("placements", "queries", "any"))
            if choice == "placements":
                return list(PLACEMENTS)
            return list(_QUERIES) if choice == "queries" else None

        menu: dict[str, FaultAction] = {
            "drop_streams": lambda rng: self._describe("drop_streams"),
            "down": lambda rng: self._describe("down", seconds=round(rng.uniform(0.3, 2.5), 2)),
            "fail_before": lambda rng: self._describe(
                "fail_requests", n=rng.randint(1, 3), after=False, endpoints=endpoints(rng)
            ),
            "fail_after": lambda rng: self._describe(
                "fail_requests",
                n=rng.randint(1, 2),
                after=True,
                status=rng.choice((500, 503)),
                code=-1007,
                endpoints=list(PLACEMENTS),
            ),
            "delay": lambda rng: self._describe(
                "delay_requests",
                n=rng.randint(1, 3),
                seconds=round(rng.uniform(0.3, 3.0), 2),
                endpoints=endpoints(rng),
            ),
            "rate_limit": lambda rng: self._describe(
                "rate_limit", n=rng.randint(1, 3), retry_after=rng.randint(1, 3)
            ),
            "ban": lambda rng: self._describe("ban", seconds=rng.randint(1, 3)),
            "duplicate_events": lambda rng: self._describe("duplicate_events", n=rng.randint(1, 5)),
            "reorder_events": lambda rng: self._describe("reorder_events", n=rng.randint(2, 4)),
            "release_events": lambda rng: self._describe("release_events"),
            "corrupt_next_event": lambda rng: self._describe(
                "corrupt_next_event", kind=rng.choice(_CORRUPTIONS)
            ),
            "terminate_user_streams": lambda rng: self._describe("terminate_user_streams"),
            "server_shutdown": lambda rng: self._describe("server_shutdown"),
            "price_jump": lambda rng: self._describe("step", n=rng.randint(3, 15)),
        }
        return menu

    def hold_placements(self, seconds: float) -> str:
        return self._describe("delay_requests", n=1, seconds=seconds, endpoints=list(PLACEMENTS))

    def placements_held(self) -> tuple[str, ...]:
        if self._http is None:
            raise RuntimeError("the campaign's Binance venue is not running")
        held: list[dict[str, Any]] = self._http.get("/faults").json()["held"]
        return tuple(
            request["client_order_id"] or ""
            for request in held
            if request["endpoint"] in PLACEMENTS
        )

    def clear_faults(self) -> None:
        self._knob("clear_faults")
        self._knob("release_events")

    def freeze_prices(self) -> None:
        self._knob("freeze_prices", frozen=True)

    # --------------------------------------------------------------- books

    def raw_state(self) -> dict[str, Any]:
        if self._http is None:
            raise RuntimeError("the campaign's Binance venue is not running")
        state: dict[str, Any] = self._http.get("/state").json()
        return state

    def books(self) -> VenueBooks:
        state = self.raw_state()
        orders = tuple(
            VenueOrder(
                client_order_id=order["client_order_id"],
                order_id=str(order["order_id"]),
                symbol=order["symbol"],
                side=order["side"],
                status=order["status"],
                is_open=order["status"] in _OPEN,
                quantity=Decimal(order["orig_qty"]),
                filled_quantity=Decimal(order["executed_qty"]),
            )
            for order in state["orders"]
        )
        fills = tuple(
            VenueFill(
                execution_id=f"{self.name}-{trade['symbol']}-{trade['trade_id']}",
                client_order_id=trade["client_order_id"],
                order_id=str(trade["order_id"]),
                symbol=trade["symbol"],
                side=trade["side"],
                quantity=Decimal(trade["qty"]),
                price=Decimal(trade["price"]),
            )
            for trade in state["trades"]
        )
        balances = {
            asset: Decimal(amounts["free"]) + Decimal(amounts["locked"])
            for asset, amounts in state["balances"].items()
        }
        return VenueBooks(
            orders=orders,
            fills=fills,
            balances=balances,
            submissions={k: int(v) for k, v in state["submissions"].items()},
            calls={k: int(v) for k, v in state.get("calls", {}).items()},
        )


def _settings(recv_window_ms: int, request_timeout: float) -> VenueSettings:
    return VenueSettings(
        acceptance_window=recv_window_ms / 1000,
        fields={"recv_window_ms": recv_window_ms, "request_timeout": request_timeout},
    )


def _readline(stream: IO[str], *, timeout: float) -> str:
    """The first line of ``stream``, or "" if none came within ``timeout`` seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""
