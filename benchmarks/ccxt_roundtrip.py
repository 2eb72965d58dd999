"""ccxt on an asyncio loop in a thread of its own: what the thread hop costs.

``python -m benchmarks.ccxt_roundtrip [--orders N]``: the local Binance venue in
a process of its own, and ccxt.pro's ``binance`` pointed at it. Each round trip
is one ``create_order`` (a LIMIT far below the market, so it rests) and one
``cancel_order``. Two ways of calling ccxt, with the same exchange settings the
adapter uses (no ccxt throttle, no ccxt retries):

- **direct**: the calls awaited on the asyncio loop itself (the floor);
- **bridged**: the CCXT broker's way: the loop runs on its own thread
  (``AsyncioThread``, one per broker incarnation) and another thread (the
  actor's) hands it each call with ``run_coroutine_threadsafe`` and waits.

The difference is the price of keeping ccxt's asyncio off the node's threads
(and of not adding trio-asyncio, a new dependency with a process-wide event
loop policy, ``ccxt.md`` section 2). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import ccxt.pro  # type: ignore[import-untyped]

# Internals: the asyncio loop a broker runs ccxt on, and the adapter's own URL rewrite.
from tradenode.brokers._asyncio import AsyncioThread
from tradenode.brokers.ccxt._settings import redirect_urls
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET

from ._binance import local_venue


def _exchange(rest: str, stream: str) -> Any:
    exchange = ccxt.pro.binance(
        {
            "apiKey": DEFAULT_API_KEY,
            "secret": DEFAULT_API_SECRET,
            "enableRateLimit": False,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
                "maxRetriesOnFailure": 0,
            },
        }
    )
    exchange.urls["api"] = redirect_urls(exchange.urls["api"], rest, stream)
    return exchange


async def _round_trip(exchange: Any, n: int) -> None:
    order = await exchange.create_order(
        "BTC/USDT", "limit", "buy", "0.01", "1000", {"clientOrderId": f"bench{n}"}
    )
    await exchange.cancel_order(order["id"], "BTC/USDT")


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=300)
    count = parser.parse_args().orders
    with local_venue() as venue:

        async def direct() -> list[float]:
            exchange = _exchange(venue.rest_url, venue.stream_url)
            try:
                await exchange.load_markets()
                samples = []
                for n in range(count):
                    started = time.perf_counter()
                    await _round_trip(exchange, n)
                    samples.append(time.perf_counter() - started)
                return samples
            finally:
                await exchange.close()

        floor = asyncio.run(direct())
        thread = AsyncioThread("bench")
        try:

            async def build() -> Any:
                return _exchange(venue.rest_url, venue.stream_url)

            exchange = thread.run(build())
            thread.run(exchange.load_markets())
            bridged = []
            for n in range(count):
                started = time.perf_counter()
                thread.run(_round_trip(exchange, count + n))
                bridged.append(time.perf_counter() - started)
            thread.run(exchange.close())
        finally:
            thread.close()
    print(
        json.dumps(
            {
                "round_trips": count,
                "direct": _stats(floor),
                "bridged": _stats(bridged),
                "hop_overhead_ms": round(
                    (statistics.median(bridged) - statistics.median(floor)) * 1000, 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
