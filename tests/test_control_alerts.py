"""Recent alerts from the alert dispatcher's own history: ``GET /v1/alerts``,
``tradenode ctl alerts`` and the dashboard's pushed snapshot (issue #19: the dashboard
shows alerts; an operator lists them from the shell)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tradenode import Node, parse_config

# The `tradenode` command itself, as the shell runs it (the click group has no public name).
from tradenode._cli import main
from tradenode.supervision import ManualClock

from ._node_helpers import Harness, node_from_file

TOKEN = "tok-alerts-0123456789abcdef"

CONFIG = """
node: {{name: alertnode, seed: 5}}
venues:
  - {{name: paper}}
oms: {{ack_timeout: 30}}
journal: {{path: {journal}, fsync: none}}
alerts: {{rules: [{{kind: kill_switch, severity: page}}], history: 3}}
control: {{enabled: true, tokens: {{ops: "${{ALERT_TOKEN}}"}}}}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(CONFIG.format(journal=tmp_path / "journal"))
    return path


@pytest.fixture
def h(config_file: Path, clock: ManualClock) -> Iterator[Harness]:
    with node_from_file(config_file, clock, {"ALERT_TOKEN": TOKEN}) as harness:
        yield harness


def ctl(config_file: Path, *args: str) -> tuple[int, str]:
    env = {"TRADENODE_TOKEN": TOKEN}
    result = CliRunner().invoke(main, ["ctl", "--config", str(config_file), *args], env=env)
    return result.exit_code, result.output


def _pushed(url: str) -> dict[str, Any]:
    """The first snapshot the dashboard's event stream pushes, read as an SSE client does."""
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        client.stream("GET", "/v1/events") as answer,
    ):
        block: list[str] = []
        for line in answer.iter_lines():
            if line:
                block.append(line)
                continue
            if "event: snapshot" in block:
                data = "\n".join(b.removeprefix("data: ") for b in block if b.startswith("data:"))
                snapshot: dict[str, Any] = json.loads(data)
                return snapshot
            block = []
    raise AssertionError("the stream ended before a snapshot")


def test_a_kill_switch_alert_is_listed_by_the_api_ctl_and_the_dashboard(
    h: Harness, config_file: Path
) -> None:
    url = h.node.control_url
    assert url is not None
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/v1/alerts").json() == []
        # A log line that looks like an alert is not one: the list is the dispatcher's.
        logging.getLogger("tradenode.alerts").warning("ALERT %s [%s]: %s", "fake", "x", "y")
        code, out = ctl(config_file, "kill-switch")
        assert code == 0, out
        (alert,) = client.get("/v1/alerts").json()
        assert alert["id"] == 1
        assert (alert["kind"], alert["severity"], alert["summary"]) == (
            "kill_switch",
            "page",
            "kill switch engaged",
        )
        assert alert["node"] == "alertnode" and alert["ts_ns"] == h.clock.time_ns()
        assert alert["delivery"] == "logged"  # no webhook: the log is its destination
        assert alert["details"] == {"flatten": "false"}
        assert client.get("/v1/alerts", params={"limit": "0"}).status_code == 400

    code, out = ctl(config_file, "--json", "alerts")
    assert code == 0, out
    assert json.loads(out) == [alert]
    code, out = ctl(config_file, "alerts")
    assert code == 0, out
    header, row = out.splitlines()
    assert header.split() == ["ID", "AT", "KIND", "SEVERITY", "VENUE", "SUMMARY", "DELIVERY"]
    assert row.split()[2:4] == ["kill_switch", "page"] and row.endswith("logged")

    pushed = _pushed(url)
    assert [a["kind"] for a in pushed["alerts"]] == ["kill_switch"]
    assert pushed["alerts"][0]["delivery"] == "logged"


def test_the_history_is_bounded_newest_first(h: Harness) -> None:
    for flatten in (False, True, False, True):
        h.node.kill_switch(flatten=flatten)
    url = h.node.control_url
    assert url is not None
    with httpx.Client(base_url=url, timeout=30) as client:
        listed = client.get("/v1/alerts").json()
        assert [a["id"] for a in listed] == [4, 3, 2]  # history: 3
        assert listed[0]["summary"] == "kill switch engaged with flatten"
        assert [a["id"] for a in client.get("/v1/alerts?limit=1").json()] == [4]


def test_without_alert_rules_the_list_is_empty(tmp_path: Path, clock: ManualClock) -> None:
    text = CONFIG.format(journal=tmp_path / "journal").replace(
        "alerts: {rules: [{kind: kill_switch, severity: page}], history: 3}\n", ""
    )
    node = Node(parse_config(text, environ={"ALERT_TOKEN": TOKEN}), clock=clock)
    node.start()
    try:
        node.kill_switch()
        assert node.control_url is not None
        assert httpx.get(node.control_url + "/v1/alerts", timeout=30).json() == []
    finally:
        node.stop(timeout=20)
