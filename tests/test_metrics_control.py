"""``/metrics`` served by the control API, and the journal's commit latency histogram.

The node runs in this process with its control server and its metrics port on
ephemeral loopback ports; scrapes go over real HTTP and are read with
``prometheus_client``'s own parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tradenode import Node, parse_config
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import OrderStatus, Side
from tradenode.supervision import ManualClock

from ._node_helpers import Harness

TOKEN = "tok-ops-0123456789abcdef"
LATENCY = "tradenode_journal_commit_latency_seconds"

CONFIG = """
node: {{name: metricsnode, seed: 5, intensity: {{max_restarts: 20, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 4, random_factor: 0}}
venues:
  - {{name: paper, paper: {{tick_interval_ms: 1000}}}}
oms: {{ack_timeout: 30}}
journal: {{path: {journal}, fsync: every_record, snapshot_every: 100000}}
control: {{enabled: true, port: 0, tokens: {{ops: {token}}}}}
{extra}
"""


def _node(tmp_path: Path, extra: str) -> Iterator[Harness]:
    text = CONFIG.format(journal=tmp_path / "journal", token=TOKEN, extra=extra)
    clock = ManualClock()
    node = Node(parse_config(text), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=20)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from _node(tmp_path, "metrics: {port: 0}")


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _scrape(url: str) -> tuple[httpx.Response, dict[str, Any]]:
    response = httpx.get(url, timeout=30)
    return response, _families(response.text)


def _samples(family: Any, suffix: str) -> list[Any]:
    return [s for s in family.samples if s.name == family.name + suffix]


def _buy(h: Harness, quantity: str) -> None:
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal(quantity), venue="paper"))
    h.wait_status(coid, OrderStatus.FILLED)


def test_metrics_are_scraped_through_the_control_api(h: Harness) -> None:
    _buy(h, "0.01")
    _buy(h, "0.02")
    h.sync()
    assert h.node.control_url is not None and h.node.observability.metrics_url is not None
    response, families = _scrape(h.node.control_url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    # The same registry as the metrics port: the same families.
    _, direct = _scrape(h.node.observability.metrics_url)
    assert set(families) == set(direct)
    assert {"tradenode_orders", "tradenode_journal_lag_records", LATENCY} <= set(families)


def test_the_commit_latency_histogram_counts_the_journals_own_commits(h: Harness) -> None:
    journal = h.node.journal
    assert journal is not None and h.node.control_url is not None
    for quantity in ("0.01", "0.02", "0.03"):
        _buy(h, quantity)
    h.sync()
    before = journal.commit_latency()
    response, families = _scrape(h.node.control_url + "/metrics")
    after = journal.commit_latency()
    assert response.status_code == 200
    assert before.count == after.count > 0  # quiescent: no commit during the scrape
    family = families[LATENCY]
    assert family.type == "histogram"
    (count,) = _samples(family, "_count")
    (total,) = _samples(family, "_sum")
    assert count.value == after.count
    assert total.value == pytest.approx(after.sum)
    buckets = {s.labels["le"]: s.value for s in _samples(family, "_bucket")}
    assert buckets["+Inf"] == after.count
    for bound, n in zip(after.bounds, after.buckets, strict=True):
        assert buckets[repr(bound)] == n
    # every_record: each append is its own commit (a new order's REGISTER and SUBMITTED
    # are one append, so three orders make three fewer commits than records), and every
    # commit is one observation.
    assert after.count == journal.stats().durable_seq - 3


def test_metrics_on_the_control_api_need_a_token_off_loopback(tmp_path: Path) -> None:
    extra = "metrics: {port: 0}\n"
    text = CONFIG.format(journal=tmp_path / "journal", token=TOKEN, extra=extra).replace(
        "control: {enabled: true, port: 0,",
        "control: {enabled: true, port: 0, host: 0.0.0.0, allow_remote: true,",
    )
    node = Node(parse_config(text), clock=ManualClock())
    node.start()
    try:
        assert node.control_url is not None
        url = node.control_url + "/metrics"
        refused = httpx.get(url, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 403
        allowed = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert allowed.status_code == 200 and LATENCY in _families(allowed.text)
    finally:
        node.stop(timeout=20)


def test_without_metrics_the_control_api_has_no_metrics(tmp_path: Path) -> None:
    for harness in _node(tmp_path, ""):
        assert harness.node.control_url is not None
        response = httpx.get(harness.node.control_url + "/metrics", timeout=30)
        assert response.status_code == 404


# -- the journal's own figures -----------------------------------------------------------------


def test_a_group_commit_is_one_observation_from_its_oldest_append(tmp_path: Path) -> None:
    clock = ManualClock()
    with Journal.open(tmp_path, fsync=FsyncPolicy.group(5.0, 256), clock=clock) as journal:
        journal.append(b"a")
        clock.advance(0.002)
        journal.append(b"b")
        journal.append(b"c")
        assert journal.commit_latency().count == 0  # queued: nothing durable yet
        clock.advance(0.003)  # the group timer fires 5 ms after the first append
        latency = journal.commit_latency()
        assert journal.durable_seq == 3
        assert latency.count == 1
        assert latency.sum == pytest.approx(0.005)
        assert dict(zip(latency.bounds, latency.buckets, strict=True))[0.0025] == 0
        assert dict(zip(latency.bounds, latency.buckets, strict=True))[0.005] == 1
        assert latency.buckets[-1] == 1


def test_records_written_before_their_fsync_count_from_their_append(tmp_path: Path) -> None:
    clock = ManualClock()
    with Journal.open(tmp_path, fsync=FsyncPolicy.NONE, clock=clock) as journal:
        journal.append(b"a")  # written at once, durable only at a flush
        clock.advance(1.5)
        journal.append(b"b")
        assert journal.commit_latency().count == 0
        clock.advance(0.5)
        journal.flush()
        latency = journal.commit_latency()
        assert (latency.count, latency.sum) == (1, pytest.approx(2.0))
        journal.flush()  # nothing new became durable: no observation
        assert journal.commit_latency().count == 1
