"""Prometheus metrics scraped over HTTP from a running node equal the node's own counters."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests._binance_helpers import binance_node, venue_clock
from tests._binance_helpers import market as binance_market
from tests._node_helpers import running_node
from tradenode import ConfigError, parse_config
from tradenode.actors import GetFills, GetMetrics, GetOpenOrders
from tradenode.messages import OrderDenied, OrderStatus, OrderType, Side
from tradenode.observability import MetricsConfig
from tradenode.supervision import ManualClock
from tradenode.testing.venues import BinanceVenue

METRICS = """
metrics: {port: 0}
risk: {max_order_quantity: 5}
"""


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the endpoint, by sample name then sorted labels."""
    text = httpx.get(url, timeout=10).text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return float(samples[name][tuple(sorted(labels.items()))])


def test_scraped_metrics_equal_the_nodes_counters_after_real_paper_orders() -> None:
    with running_node(METRICS) as h:
        url = h.node.observability.metrics_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        filled = [
            h.do(lambda ctx, v=v: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue=v))
            for v in ("paper", "paper", "paper2")
        ]
        for coid in filled:
            h.wait_status(coid, OrderStatus.FILLED)
        resting = h.do(
            lambda ctx: ctx.submit_order(
                "BTCUSDT",
                Side.BUY,
                D("0.1"),
                venue="paper",
                order_type=OrderType.LIMIT,
                price=D("1000"),
            )
        )
        h.wait_status(resting, OrderStatus.ACCEPTED)
        denied = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("9"), venue="paper"))
        h.wait_for(OrderDenied, denied)
        h.sync()

        samples = scrape(url)
        metrics = h.node.oms.ask(GetMetrics())
        assert value(samples, "tradenode_orders_total") == metrics["total_orders"] == 5
        assert value(samples, "tradenode_orders_submitted_total") == metrics["submitted_orders"]
        assert value(samples, "tradenode_orders_filled_total") == metrics["filled_orders"] == 3
        assert value(samples, "tradenode_orders_denied_total") == metrics["denied_orders"] == 1
        assert value(samples, "tradenode_denials_total", code="MAX_ORDER_QUANTITY") == 1
        fills = h.node.oms.ask(GetFills())
        for venue in ("paper", "paper2"):
            expected = sum(1 for f in fills if f.venue == venue)
            assert expected > 0
            assert value(samples, "tradenode_fills", venue=venue) == expected
        open_orders = h.node.oms.ask(GetOpenOrders())
        assert [o.client_order_id for o in open_orders] == [resting]
        assert value(samples, "tradenode_open_orders", venue="paper", state="ACCEPTED") == 1
        assert value(samples, "tradenode_breaker_state", venue="paper", state="closed") == 1
        assert value(samples, "tradenode_breaker_state", venue="paper", state="open") == 0
        assert value(samples, "tradenode_dlq_size", venue="paper") == 0
        assert (
            0
            <= value(samples, "tradenode_rate_limit_headroom", venue="paper")
            <= value(samples, "tradenode_rate_limit_capacity", venue="paper")
        )
        # Four orders reached a venue; each was observed once, decision -> venue.
        routed = sum(
            v
            for k, v in samples["tradenode_decision_to_venue_seconds_count"].items()
            if k in ((("venue", "paper"),), (("venue", "paper2"),))
        )
        assert routed == metrics["submitted_orders"] == 4
        fill_count = sum(samples["tradenode_fill_to_strategy_seconds_count"].values())
        assert fill_count == len(fills)


def test_restarts_breaker_open_and_dlq_follow_the_node() -> None:
    with running_node(METRICS) as h:
        url = h.node.observability.metrics_url
        assert url is not None
        h.node.venues["paper"].fail_next_requests(3)  # type: ignore[attr-defined]
        for _ in range(3):
            h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="paper"))
        h.sync()
        stats = h.node.failure_stats("paper")
        assert stats.circuit_state == "open"
        samples = scrape(url)
        assert value(samples, "tradenode_breaker_state", venue="paper", state="open") == 1
        assert value(samples, "tradenode_breaker_failures_total", venue="paper") == 3
        assert value(samples, "tradenode_breaker_opened_total", venue="paper") == 1
        assert value(samples, "tradenode_dlq_size", venue="paper") == stats.dlq_size
        restarts = h.node.system.events.restart_counts()
        scraped = {
            dict(k)["path"]: v for k, v in samples.get("tradenode_actor_restarts_total", {}).items()
        }
        assert scraped == {path: float(n) for path, n in restarts.items()}


def test_journal_lag_and_drift_are_served(tmp_path: Any) -> None:
    journal = f"journal: {{path: '{tmp_path}/j', fsync: every_record}}\n"
    with running_node(METRICS + journal) as h:
        url = h.node.observability.metrics_url
        assert url is not None
        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="paper"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        samples = scrape(url)
        assert h.node.journal is not None
        stats = h.node.journal.stats()
        assert value(samples, "tradenode_journal_last_seq") >= 1
        assert value(samples, "tradenode_journal_lag_records") == value(
            samples, "tradenode_journal_last_seq"
        ) - value(samples, "tradenode_journal_durable_seq")
        assert value(samples, "tradenode_journal_appended_total") <= stats.appended
        assert value(samples, "tradenode_position_drifts_total") == 0
        assert "tradenode_position_drift" not in samples  # no drift: no series


def test_a_failed_background_snapshot_is_counted_in_the_metrics(tmp_path: Any) -> None:
    """A snapshot that fails is only logged and counted by the journal (the node goes on):
    the count is served, so an operator sees restarts growing longer before one happens."""
    journal = f"journal: {{path: '{tmp_path}/j', fsync: group}}\n"
    with running_node(METRICS + journal) as h:
        url = h.node.observability.metrics_url
        assert url is not None and h.node.journal is not None
        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="paper"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        assert value(scrape(url), "tradenode_journal_snapshot_failures_total") == 0

        def unwritable() -> bytes:
            raise OSError(28, "No space left on device")

        h.node.journal.write_snapshot_later(h.node.journal.stats().last_seq, unwritable)
        h.node.journal.latest_snapshot()  # waits for what was handed over
        assert value(scrape(url), "tradenode_journal_snapshot_failures_total") == 1


def test_metrics_refuse_a_remote_bind_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="allow_remote"):
        parse_config("metrics: {host: 0.0.0.0, port: 0}\n")
    assert MetricsConfig(host="0.0.0.0", allow_remote=True).allow_remote


def test_no_metrics_section_no_server_and_no_observer() -> None:
    with running_node() as h:
        assert h.node.observability.metrics_url is None
        tree = h.node.tree()
        assert tree is not None and "observer" not in [c.name for c in tree.children]


def test_a_position_drift_at_the_local_binance_venue_is_served() -> None:
    clock = ManualClock()
    with (
        BinanceVenue(seed=23, clock=venue_clock(clock)) as venue,
        binance_node(venue, "metrics: {port: 0}\n", clock=clock) as h,
    ):
        url = h.node.observability.metrics_url
        assert url is not None
        coid = h.do(binance_market(Side.BUY, "0.2"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.periodic_check()
        venue.deposit("BTC", D("1"))
        h.periodic_check()
        h.periodic_check()
        samples = scrape(url)
        metrics = h.node.oms.ask(GetMetrics())
        assert value(samples, "tradenode_position_drifts_total") == metrics["position_drifts"] == 1
        gap = h.node.oms_store.drifting[("binance", "BTC")]
        assert value(samples, "tradenode_position_drift", venue="binance", asset="BTC") == float(
            gap
        )
        assert value(samples, "tradenode_breaker_state", venue="binance", state="closed") == 1


def test_the_same_metrics_as_an_asgi_app_for_another_server() -> None:
    with running_node(METRICS) as h:
        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="paper"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        app = h.node.observability.asgi_app()
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b""}
        trio.run(app, {**scope, "headers": []}, receive, send)
        assert sent[0]["status"] == 200
        text = b"".join(m.get("body", b"") for m in sent[1:]).decode()
        served = {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if not s.labels
        }
        metrics = h.node.oms.ask(GetMetrics())
        assert served["tradenode_orders_filled_total"] == metrics["filled_orders"] == 1
