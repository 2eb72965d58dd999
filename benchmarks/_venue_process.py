"""The local Binance venue in a process of its own, as an exchange is on another machine.

``python -m benchmarks._venue_process`` serves ``BinanceVenue`` with rate
limits far above what a benchmark sends (``tradenode venue binance`` keeps
Binance's own 50 orders per 10 s), prints one JSON line with its URLs and
runs until SIGTERM/SIGINT. Knobs (``down``, ``up``, ...) are on its admin
port: ``POST <admin>/<knob>``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from tradenode.testing.venues import BinanceVenue

from ._common import VENUE_CPUS_ENV


def main() -> None:
    # A benchmark run with ``--cpus`` pins the node's side; the venue, an exchange
    # on other machines, keeps the CPUs the run had.
    cpus = os.environ.get(VENUE_CPUS_ENV)
    if cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})
    # Likewise the benchmark's thread scheduling (``_common.schedule_like_the_node``),
    # which a process inherits: the venue keeps the system's default.
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is not None and os.sched_getscheduler(0) == batch:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with BinanceVenue(seed=args.seed, weight_limit=10**9, order_limit_10s=10**9) as venue:
        urls = {
            "rest": venue.rest_url,
            "ws_api": venue.ws_api_url,
            "stream": venue.stream_url,
            "admin": venue.admin_url,
        }
        sys.stdout.write(json.dumps(urls) + "\n")
        sys.stdout.flush()
        stop.wait()


if __name__ == "__main__":
    main()
