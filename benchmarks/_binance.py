"""The local Binance venue, a bare signed httpx client for it, and a Binance node config."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET


class VenueProcess:
    """The local Binance venue (``tradenode.testing.venues.BinanceVenue``) in a process
    of its own, so its CPU is not the node's: an exchange is on another machine.
    Rate limits are far above what a benchmark sends (Binance's own 50 orders per
    10 s would make every figure a rate limiter's)."""

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed
        self.process: subprocess.Popen[str] | None = None
        self.rest_url = self.ws_api_url = self.stream_url = self.admin_url = ""

    def __enter__(self) -> VenueProcess:
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._venue_process", "--seed", str(self.seed)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            raise RuntimeError("the local Binance venue did not start")
        urls = json.loads(line)
        self.rest_url, self.ws_api_url = urls["rest"], urls["ws_api"]
        self.stream_url, self.admin_url = urls["stream"], urls["admin"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def knob(self, name: str, **args: Any) -> Any:
        response = httpx.post(f"{self.admin_url}/{name}", json=args, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def down(self) -> None:
        """Cut every connection and refuse new ones, until ``up``."""
        self.knob("down")

    def up(self) -> None:
        self.knob("up")


def local_venue(seed: int = 7) -> VenueProcess:
    return VenueProcess(seed)


def _encode(params: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


class BareClient:
    """What any client must do for one signed Binance REST call, and nothing else:
    a keep-alive ``httpx.Client``, HMAC-SHA256 over the query string, JSON out."""

    def __init__(self, rest_url: str, *, timeout: float = 10.0) -> None:
        self.client = httpx.Client(base_url=rest_url, timeout=timeout)
        self.headers = {"X-MBX-APIKEY": DEFAULT_API_KEY}
        self.secret = DEFAULT_API_SECRET.encode()

    def signed(self, method: str, path: str, params: Sequence[tuple[str, str]]) -> Any:
        full = [*params, ("recvWindow", "5000"), ("timestamp", str(time.time_ns() // 1_000_000))]
        query = _encode(full)
        signature = hmac.new(self.secret, query.encode(), hashlib.sha256).hexdigest()
        response = self.client.request(
            method, f"{path}?{query}&signature={signature}", headers=self.headers
        )
        response.raise_for_status()
        return response.json()

    def public(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        response = self.client.get(f"{path}?{_encode(params)}" if params else path)
        response.raise_for_status()
        return response.json()

    def market_order(self, client_order_id: str, side: str, quantity: str = "0.001") -> Any:
        return self.signed(
            "POST",
            "/api/v3/order",
            [
                ("symbol", "BTCUSDT"),
                ("side", side),
                ("type", "MARKET"),
                ("quantity", quantity),
                ("newClientOrderId", client_order_id),
                ("newOrderRespType", "RESULT"),
            ],
        )

    def close(self) -> None:
        self.client.close()


def binance_venue_yaml(venue: VenueProcess, name: str = "binance") -> str:
    return f"""  - name: {name}
    kind: binance
    binance:
      environment: custom
      api_key: {DEFAULT_API_KEY}
      api_secret: {DEFAULT_API_SECRET}
      rest_url: {venue.rest_url}
      ws_api_url: {venue.ws_api_url}
      stream_url: {venue.stream_url}
      symbols: [BTCUSDT]
      check_interval: 0
    breaker: {{rate_per_second: 1000000000, burst: 1000000000, request_timeout: 10,
               failure_threshold: 1000}}
"""


def bare_cancels(
    venue: VenueProcess, count: int, workers: int = 32, *, cancel_all: bool = False
) -> float:
    """Seconds for a bare client to cancel ``count`` resting orders at ``venue``: with as
    many requests in flight as the adapter's connection pool (32) allows, or with one
    ``DELETE /api/v3/openOrders`` for the symbol (``cancel_all``), as the adapter does."""
    client = BareClient(venue.rest_url, timeout=60)
    try:
        coids = [f"bare-ks-{time.time_ns()}-{n}" for n in range(count)]
        for coid in coids:
            client.signed(
                "POST",
                "/api/v3/order",
                [
                    ("symbol", "BTCUSDT"),
                    ("side", "BUY"),
                    ("type", "LIMIT"),
                    ("timeInForce", "GTC"),
                    ("quantity", "0.001"),
                    ("price", "45000.00"),
                    ("newClientOrderId", coid),
                    ("newOrderRespType", "RESULT"),
                ],
            )

        def cancel(coid: str) -> Any:
            return client.signed(
                "DELETE", "/api/v3/order", [("symbol", "BTCUSDT"), ("origClientOrderId", coid)]
            )

        started = time.perf_counter()
        if cancel_all:
            client.signed("DELETE", "/api/v3/openOrders", [("symbol", "BTCUSDT")])
            return time.perf_counter() - started
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(cancel, coids))
        return time.perf_counter() - started
    finally:
        client.close()
