"""Paths of the trading core that only show under particular settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal as D
from typing import Any

from tradenode.actors import GetBreakerStats, Strategy

# ReprocessParked is internal (the breaker sends it to itself): sent here by hand.
from tradenode.actors._breaker import ReprocessParked
from tradenode.messages import (
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderStatusReport,
    Side,
)
from tradenode.supervision import EventRecorder

from ._node_helpers import running_node


def market(quantity: str = "0.1") -> Any:
    return lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D(quantity))


def test_a_late_acknowledgement_makes_the_oms_query_the_venue() -> None:
    with running_node() as h:
        from tradenode.brokers import VenueConfig

        h.node.add_venue(
            VenueConfig(name="slow", paper={"latency_ms": 60000, "tick_interval_ms": 100000})
        )
        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="slow"))
        h.sync()
        assert h.order(coid).status is OrderStatus.SUBMITTED
        h.clock.advance(30)
        report = h.wait_for(OrderStatusReport, coid)[0]
        assert report.status is OrderStatus.FILLED
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.1")


def test_orders_parked_while_the_circuit_is_open_are_reprocessed_on_command() -> None:
    with running_node() as h:
        # BreakerConfig is internal (venues get it from YAML): built here directly.
        from tradenode._config import BreakerConfig
        from tradenode.brokers import VenueConfig

        h.node.add_venue(
            VenueConfig(
                name="parked",
                paper={"tick_interval_ms": 1000},
                breaker=BreakerConfig(
                    failure_threshold=1, open_timeout=5, when_open="park", max_retries=0
                ),
            )
        )
        venue = h.node.venues["parked"]
        venue.fail_next_requests(1)
        first = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="parked"))
        h.sync()
        parked = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.2"), venue="parked"))
        h.sync()
        stats = h.node.failure_stats("parked")
        assert (stats.circuit_state, stats.dlq_size) == ("open", 1)
        assert venue.order(parked) is None
        h.clock.advance(5)
        entry = h.node.directory.venue("parked")
        assert entry is not None
        entry.breaker.tell(ReprocessParked())
        h.wait_status(parked, OrderStatus.FILLED)
        assert h.node.failure_stats("parked").dlq_size == 0
        assert venue.order(first) is None or venue.order(first).client_order_id == first


def test_the_venue_rate_limiter_queues_orders_instead_of_refusing_them() -> None:
    with running_node() as h:
        # BreakerConfig is internal (venues get it from YAML): built here directly.
        from tradenode._config import BreakerConfig
        from tradenode.brokers import VenueConfig

        h.node.add_venue(
            VenueConfig(
                name="limited",
                paper={"tick_interval_ms": 100000},
                breaker=BreakerConfig(rate_per_second=1, burst=2),
            )
        )
        venue = h.node.venues["limited"]
        coids = [
            h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="limited"))
            for _ in range(4)
        ]
        h.sync()
        assert [venue.order(c) is not None for c in coids] == [True, True, False, False]
        entry = h.node.directory.venue("limited")
        assert entry is not None
        assert entry.breaker.ask(GetBreakerStats()).rate_limited_waiting == 2
        h.clock.advance(1.0)
        h.wait_status(coids[2], OrderStatus.FILLED)
        h.clock.advance(1.0)
        h.wait_status(coids[3], OrderStatus.FILLED)
        assert not any(isinstance(m, OrderRejected) for m in h.events().items)


class Cycler(Strategy):
    def __init__(self, seen: EventRecorder) -> None:
        self.seen = seen
        self.symbols = ("BTCUSDT",)
        self.cycle_time_ms = 500

    def on_cycle(self) -> None:
        self.seen(("cycle", self.ctx.now_ns()))
        if len([i for i in self.seen.items if i[0] == "cycle"]) == 2:
            self.ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"))

    def record_execution(self, fill: OrderFilled) -> None:
        self.seen(("fill", fill.execution_id))


def test_cycle_timer_drives_a_strategy_and_fills_reach_record_execution() -> None:
    with running_node() as h:
        seen = EventRecorder()
        h.node.add_strategy("cycler", lambda: Cycler(seen))
        h.clock.advance(0.5)
        seen.wait_for(lambda i: i[0] == "cycle")
        assert not any(i[0] == "fill" for i in seen.items)
        h.clock.advance(0.5)
        fill = seen.wait_for(lambda i: i[0] == "fill")[0]
        assert fill[1].startswith("paper-")
        cycles = [i for i in seen.items if i[0] == "cycle"]
        assert len(cycles) == 2 and cycles[1][1] - cycles[0][1] == 500_000_000


def test_the_cli_kill_switch_signal_cancels_and_reports() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tradenode", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert "running" in process.stdout.readline()
    process.send_signal(signal.SIGUSR1)
    for line in process.stdout:
        if "KILL SWITCH engaged" in line:
            break
    else:
        raise AssertionError("no kill switch report")
    assert "complete=True" in line
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "risk: HALTED" in out
