"""Prometheus metrics read from the node at scrape time.

``NodeCollector.collect`` asks the node's own actors and stores (the OMS's
``GetMetrics``/``GetOpenOrders``/``GetFills``, each breaker's
``GetBreakerStats``, the supervision event bus, the journal's ``stats()``):
there is no second set of counters to drift from the node's. The two
latency histograms are the exception: nothing in the node measured them,
so ``LatencyHistograms`` observes them from the OMS's published events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..actors._breaker import GetBreakerStats, VenueFailureStats
from ..actors._breaker_state import CircuitState
from ..actors._control import GetFills, GetMetrics, GetOpenOrders, GetOrder

if TYPE_CHECKING:
    from .._node import Node

__all__ = ["LatencyHistograms", "MetricsServer", "NodeCollector"]

logger = logging.getLogger("tradenode.metrics")

_ASK_TIMEOUT = 5.0
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LatencyHistograms:
    """decision -> venue and fill -> strategy, in seconds of the node's clock, and
    denials by code: what the node did not measure, observed from the OMS's events."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decision_to_venue = Histogram(
            "tradenode_decision_to_venue_seconds",
            "From a strategy's decision (SubmitOrder.ts_ns) to the OMS handing it to its venue.",
            labelnames=("venue",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.denials = Counter(
            "tradenode_denials",
            "Orders denied, by denial code (OrderDenied events the OMS published).",
            labelnames=("code",),
            registry=registry,
        )
        self.fill_to_strategy = Histogram(
            "tradenode_fill_to_strategy_seconds",
            "From a fill's venue time (OrderFilled.ts_ns) to its delivery to the OMS's subscribers.",
            labelnames=("venue",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )


class NodeCollector(Collector):
    """Reads the node's counters on each scrape; an actor that does not answer is skipped
    (and logged), never failing the scrape or the node."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def collect(self) -> Iterator[Metric]:
        node = self._node
        if node.system.is_terminated:
            return
        yield from self._safely("oms", self._oms)
        yield from self._safely("breakers", self._breakers)
        yield from self._safely("supervision", self._supervision)
        yield from self._safely("journal", self._journal)
        yield from self._safely("drift", self._drift)

    def _safely(self, what: str, part: Any) -> Iterator[Metric]:
        try:
            metrics = list(part())
        except Exception as exc:  # noqa: BLE001 - a scrape must never take the node down
            logger.warning("metrics: %s unavailable (%s: %s)", what, type(exc).__name__, exc)
            return
        yield from metrics

    def _oms(self) -> Iterator[Metric]:
        oms = self._node.oms
        metrics: dict[str, Any] = oms.ask(GetMetrics(), timeout=_ASK_TIMEOUT)
        for name, key, text in (
            ("tradenode_orders", "total_orders", "Orders registered by the OMS."),
            ("tradenode_orders_submitted", "submitted_orders", "Orders sent to a venue."),
            ("tradenode_orders_filled", "filled_orders", "Orders completely filled."),
            ("tradenode_orders_denied", "denied_orders", "Orders denied before any venue."),
            ("tradenode_orders_rejected", "rejected_orders", "Orders a venue rejected."),
            ("tradenode_position_drifts", "position_drifts", "Position drifts confirmed."),
        ):
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], float(metrics.get(key) or 0))
            yield counter
        open_orders = oms.ask(GetOpenOrders(), timeout=_ASK_TIMEOUT)
        by_state: dict[tuple[str, str], int] = {}
        for order in open_orders:
            view = oms.ask(GetOrder(order.client_order_id), timeout=_ASK_TIMEOUT)
            if view is None:  # completed between the two questions
                continue
            slot = (str(view.venue), str(view.status.value))
            by_state[slot] = by_state.get(slot, 0) + 1
        family = GaugeMetricFamily(
            "tradenode_open_orders", "Open orders by venue and state.", labels=("venue", "state")
        )
        for (venue, state), count in sorted(by_state.items()):
            family.add_metric([venue, state], count)
        yield family
        fills = oms.ask(GetFills(), timeout=_ASK_TIMEOUT)
        by_venue: dict[str, int] = {}
        for fill in fills:
            by_venue[fill.venue] = by_venue.get(fill.venue, 0) + 1
        fills_family = GaugeMetricFamily(
            "tradenode_fills", "Fills the OMS retains, by venue.", labels=("venue",)
        )
        for venue, count in sorted(by_venue.items()):
            fills_family.add_metric([venue], count)
        yield fills_family
        notional = metrics.get("total_filled_notional")
        if isinstance(notional, Decimal | int | float):
            total = CounterMetricFamily(
                "tradenode_filled_notional", "Notional filled (quote currency units)."
            )
            total.add_metric([], float(notional))
            yield total

    def _breakers(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "tradenode_breaker_state",
            "1 for the breaker's current state per venue.",
            labels=("venue", "state"),
        )
        failures = CounterMetricFamily(
            "tradenode_breaker_failures", "Transport failures per venue.", labels=("venue",)
        )
        opened = CounterMetricFamily(
            "tradenode_breaker_opened", "Times the breaker opened.", labels=("venue",)
        )
        dlq = GaugeMetricFamily("tradenode_dlq_size", "Parked requests.", labels=("venue",))
        waiting = GaugeMetricFamily(
            "tradenode_rate_limited_waiting", "Requests waiting for a token.", labels=("venue",)
        )
        headroom = GaugeMetricFamily(
            "tradenode_rate_limit_headroom",
            "Tokens the venue's rate limiter has left now.",
            labels=("venue",),
        )
        capacity = GaugeMetricFamily(
            "tradenode_rate_limit_capacity", "The rate limiter's burst.", labels=("venue",)
        )
        node = self._node
        for entry in node.directory.venues():
            stats = entry.breaker.ask(GetBreakerStats(), timeout=_ASK_TIMEOUT)
            if not isinstance(stats, VenueFailureStats):
                continue
            for state in CircuitState:
                states.add_metric(
                    [entry.name, state.value], 1.0 if stats.circuit_state == state.value else 0.0
                )
            failures.add_metric([entry.name], stats.failure_count)
            opened.add_metric([entry.name], stats.breaker.opened_count)
            dlq.add_metric([entry.name], stats.dlq_size)
            waiting.add_metric([entry.name], stats.rate_limited_waiting)
            store = node._breaker_stores.get(entry.name)
            if store is not None:
                tokens = _peek_tokens(store.bucket, node.clock.monotonic())
                headroom.add_metric([entry.name], tokens)
                capacity.add_metric([entry.name], store.bucket.capacity)
        yield from (states, failures, opened, dlq, waiting, headroom, capacity)

    def _supervision(self) -> Iterator[Metric]:
        node = self._node
        family = CounterMetricFamily(
            "tradenode_actor_restarts", "Restarts by actor path.", labels=("path",)
        )
        for path, count in sorted(node.system.events.restart_counts().items()):
            family.add_metric([path], count)
        yield family
        dead = CounterMetricFamily("tradenode_dead_letters", "Messages not processed.")
        dead.add_metric([], node.system.dead_letters.count)
        yield dead

    def _journal(self) -> Iterator[Metric]:
        journal = self._node.journal
        if journal is None:
            return
        stats = journal.stats()
        for name, value, text in (
            ("tradenode_journal_last_seq", stats.last_seq, "Last record appended."),
            ("tradenode_journal_durable_seq", stats.durable_seq, "Last record known durable."),
            (
                "tradenode_journal_lag_records",
                stats.last_seq - stats.durable_seq,
                "Records appended but not yet durable (commit lag).",
            ),
            ("tradenode_journal_segments", stats.segments, "Segment files on disk."),
        ):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], value)
            yield gauge
        for name, value, text in (
            ("tradenode_journal_appended", stats.appended, "Records appended since open."),
            ("tradenode_journal_fsyncs", stats.fsyncs, "fsync calls since open."),
            (
                "tradenode_journal_snapshot_failures",
                journal.snapshot_failures,
                "Background snapshots that failed since open (each logged at ERROR): replay"
                " starts from an older snapshot, so restarts grow longer until one succeeds.",
            ),
        ):
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            yield counter
        latency = journal.commit_latency()
        histogram = HistogramMetricFamily(
            "tradenode_journal_commit_latency_seconds",
            "Seconds from a record's append to the end of the fsync that made it durable, "
            "per commit (its oldest record).",
        )
        histogram.add_metric(
            [],
            buckets=[(_bound(b), n) for b, n in zip(latency.bounds, latency.buckets, strict=True)]
            + [("+Inf", latency.count)],
            sum_value=latency.sum,
        )
        yield histogram

    def _drift(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "tradenode_position_drift",
            "Unexplained gap between our fills and the venue's account, per asset.",
            labels=("venue", "asset"),
        )
        # A copy taken in one call: the OMS thread may change the dict meanwhile.
        for (venue, asset), gap in sorted(dict(self._node.oms_store.drifting).items()):
            family.add_metric([venue, asset], float(gap))
        yield family


def _peek_tokens(bucket: Any, now: float) -> float:
    """Tokens now without refilling the bucket (the breaker's thread owns its state)."""
    tokens = float(bucket._tokens)
    stamp = float(bucket._stamp)
    rate = float(bucket.rate_per_second)
    return min(float(bucket.capacity), tokens + max(0.0, now - stamp) * rate)


class MetricsServer:
    """``/metrics`` over HTTP on its own port, from prometheus-client's own server."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._lock = threading.Lock()
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server: WSGIServer = server
        self._thread = thread
        self.host = host
        self.port = int(server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        with self._lock:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)


def _bound(seconds: float) -> str:
    """A bucket's ``le`` as Prometheus' own histograms print it (``0.005``, ``1.0``)."""
    return repr(float(seconds))
