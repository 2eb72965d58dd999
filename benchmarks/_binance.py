"""The local Binance venue, bare clients for it (signed httpx REST; a logged-on
trio-websocket WebSocket API connection), and Binance node configs."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import itertools
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
import trio
import trio_websocket
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tradenode.supervision import TrioThread
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET

ED25519_API_KEY = "bench-ed25519-key"
"""The API key the benchmarks register an Ed25519 public key under at the local venue."""


class Ed25519Key:
    """A fresh Ed25519 key pair: the private PEM for the node or adapter, the public PEM
    the venue verifies with, and raw signing for the bare client."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.private_pem = self.private.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        ).decode()
        self.public_pem = (
            self.private.public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, payload: str) -> str:
        return base64.b64encode(self.private.sign(payload.encode())).decode()


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

    def view(self, name: str) -> Any:
        """A read-only admin page (``calls``, ``state``, ...)."""
        response = httpx.get(f"{self.admin_url}/{name}", timeout=30)
        response.raise_for_status()
        return response.json()

    def register_ed25519(self, key: Ed25519Key, api_key: str = ED25519_API_KEY) -> None:
        """Let ``api_key`` sign with ``key`` (and log a WebSocket API session on)."""
        self.knob("register_ed25519_key", api_key=api_key, public_key_pem=key.public_pem)

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
        return self.signed("POST", "/api/v3/order", market_params(client_order_id, side, quantity))

    def close(self) -> None:
        self.client.close()


class BareWsClient:
    """What any client must do for one order over Binance's WebSocket API, and nothing
    else: one connection (trio-websocket), logged on once with ``session.logon``
    (Ed25519), then per order one ``order.place`` frame (``timestamp`` only: the
    session signs) and its answer, read as JSON. It runs on a trio thread of its own;
    each call is timed inside that thread, from just before the frame is built to
    the answer parsed, so the figure holds no thread hop."""

    def __init__(self, ws_api_url: str, key: Ed25519Key, api_key: str = ED25519_API_KEY) -> None:
        self.url = ws_api_url
        self.key = key
        self.api_key = api_key
        self.ids = itertools.count(1)
        self.thread = TrioThread("bare-ws")
        self.socket: trio_websocket.WebSocketConnection | None = None
        self.closed = trio.Event()

    def __enter__(self) -> BareWsClient:
        self.thread.start(self._serve)
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.run(self._close)
        self.thread.close()

    async def _serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio_websocket.open_websocket_url(self.url) as socket:
            self.socket = socket
            stamp = str(time.time_ns() // 1_000_000)
            payload = f"apiKey={self.api_key}&timestamp={stamp}"
            answer = await self._call(
                "session.logon",
                {"apiKey": self.api_key, "timestamp": stamp, "signature": self.key.sign(payload)},
            )
            if answer.get("status") != 200:
                raise RuntimeError(f"bare session.logon refused: {answer}")
            task_status.started()
            await self.closed.wait()

    async def _close(self) -> None:
        self.closed.set()

    async def _call(self, method: str, params: dict[str, str]) -> Any:
        socket = self.socket
        assert socket is not None
        request_id = str(next(self.ids))
        await socket.send_message(
            json.dumps({"id": request_id, "method": method, "params": params})
        )
        while True:
            answer = json.loads(await socket.get_message())
            if answer.get("id") == request_id:
                return answer

    async def _timed_order(self, params: Sequence[tuple[str, str]]) -> tuple[int, Any]:
        started = time.perf_counter_ns()
        full = dict(params)
        full["timestamp"] = str(time.time_ns() // 1_000_000)
        answer = await self._call("order.place", full)
        return time.perf_counter_ns() - started, answer

    def order(self, params: Sequence[tuple[str, str]]) -> tuple[int, Any]:
        """``order.place`` with ``params``: (ns from building the frame to the parsed answer,
        the answer)."""
        return self.thread.run(self._timed_order, params)

    def market_order(
        self, client_order_id: str, side: str, quantity: str = "0.001"
    ) -> tuple[int, Any]:
        return self.order(market_params(client_order_id, side, quantity))


def market_params(
    client_order_id: str, side: str, quantity: str = "0.001"
) -> list[tuple[str, str]]:
    return [
        ("symbol", "BTCUSDT"),
        ("side", side),
        ("type", "MARKET"),
        ("quantity", quantity),
        ("newClientOrderId", client_order_id),
        ("newOrderRespType", "RESULT"),
    ]


def limit_params(
    client_order_id: str, side: str, price: str, quantity: str = "0.001"
) -> list[tuple[str, str]]:
    return [
        ("symbol", "BTCUSDT"),
        ("side", side),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", quantity),
        ("price", price),
        ("newClientOrderId", client_order_id),
        ("newOrderRespType", "RESULT"),
    ]


def binance_venue_yaml(
    venue: VenueProcess,
    name: str = "binance",
    *,
    ed25519_key_file: Path | None = None,
    order_entry: str = "websocket",
) -> str:
    """A ``binance`` venue entry for ``venue``: HMAC-signed (REST order entry), or with
    ``ed25519_key_file`` an Ed25519 key that logs the WebSocket API on (order entry
    over it unless ``order_entry: rest``)."""
    if ed25519_key_file is None:
        credentials = f"api_key: {DEFAULT_API_KEY}\n      api_secret: {DEFAULT_API_SECRET}"
    else:
        credentials = (
            f"api_key: {ED25519_API_KEY}\n      key_type: ed25519\n"
            f"      private_key_path: {ed25519_key_file}\n      order_entry: {order_entry}"
        )
    return f"""  - name: {name}
    kind: binance
    binance:
      environment: custom
      {credentials}
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
