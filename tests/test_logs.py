"""Structured logs: JSON lines with the context fields, readable text otherwise, no secret ever."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from tradenode import parse_config
from tradenode.observability import LogFormat, LoggingConfig, configure_logging, secret_values

SECRET_CONFIG = """
node: {name: lognode}
alerts:
  rules: [{kind: kill_switch}]
  webhooks: [{url: 'https://hooks.example/T0KEN-abc123', headers: {authorization: 'Bearer s3cr3t-xyz'}}]
"""


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield buffer
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_tradenode_observability", False):
            root.removeHandler(handler)


def test_json_lines_carry_the_context_fields_and_mask_every_configured_secret(
    stream: io.StringIO,
) -> None:
    config = parse_config(SECRET_CONFIG)
    secrets = secret_values(config)
    assert set(secrets) == {"https://hooks.example/T0KEN-abc123", "Bearer s3cr3t-xyz"}
    configure_logging(
        LoggingConfig(format=LogFormat.JSON, level="INFO"),
        node=config.node.name,
        secrets=secrets,
        handler=logging.StreamHandler(stream),
    )
    log = logging.getLogger("tradenode.test")
    log.warning(
        "posting to %s with %s",
        "https://hooks.example/T0KEN-abc123",
        "Bearer s3cr3t-xyz",
        extra={"venue": "paper", "strategy": "s1", "client_order_id": "abc-1"},
    )
    try:
        raise RuntimeError("refused: Bearer s3cr3t-xyz")
    except RuntimeError:
        log.exception("call failed", extra={"venue": "paper"})
    log.info("plain line")
    text = stream.getvalue()
    assert "T0KEN-abc123" not in text and "s3cr3t-xyz" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    first, failed, plain = lines
    assert first["message"] == "posting to *** with ***"
    assert (first["node"], first["venue"], first["strategy"], first["client_order_id"]) == (
        "lognode",
        "paper",
        "s1",
        "abc-1",
    )
    assert first["level"] == "WARNING" and first["logger"] == "tradenode.test"
    assert "RuntimeError: refused: ***" in failed["exc"]
    assert (plain["node"], plain["venue"], plain["client_order_id"]) == ("lognode", None, None)


def test_readable_text_shows_the_known_fields_and_masks_too(stream: io.StringIO) -> None:
    configure_logging(
        LoggingConfig(),
        node="n1",
        secrets=["hunter2"],
        handler=logging.StreamHandler(stream),
        level="INFO",
    )
    logging.getLogger("tradenode.oms").warning(
        "key hunter2 used", extra={"venue": "paper", "client_order_id": "c-9"}
    )
    line = stream.getvalue().strip()
    assert "hunter2" not in line
    assert line.endswith("WARNING tradenode.oms [venue=paper client_order_id=c-9]: key *** used")


def test_alert_log_lines_carry_their_venue(stream: io.StringIO) -> None:
    from tradenode.observability import Alert, AlertDispatcher, AlertKind, AlertsConfig

    configure_logging(
        LoggingConfig(format=LogFormat.JSON), node="n1", handler=logging.StreamHandler(stream)
    )
    dispatcher = AlertDispatcher(AlertsConfig())
    try:
        dispatcher.publish(Alert(AlertKind.BREAKER_OPEN, "critical", "n1", "open", 0, "paper"))
    finally:
        dispatcher.stop()
    (line,) = [json.loads(s) for s in stream.getvalue().splitlines()]
    assert (line["venue"], line["logger"]) == ("paper", "tradenode.alerts")
    assert line["message"] == "ALERT breaker_open [critical]: open"


def test_a_running_nodes_json_lines_name_the_venue_and_the_order(stream: io.StringIO) -> None:
    from decimal import Decimal as D

    from tests._node_helpers import running_node
    from tradenode.messages import OrderStatus, Side

    configure_logging(
        LoggingConfig(format=LogFormat.JSON, level="INFO"),
        node="testnode",
        secrets=secret_values(parse_config(SECRET_CONFIG)),
        handler=logging.StreamHandler(stream),
    )
    with running_node() as h:
        h.node.venues["paper"].fail_next_requests(1)  # type: ignore[attr-defined]
        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="paper"))
        for _ in range(3):  # the breaker asks the venue, then re-sends after its backoff
            h.sync()
            h.clock.advance(1.0)
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert all(line["node"] == "testnode" for line in lines)
    transport = [line for line in lines if "failed in transport" in line["message"]]
    assert transport and all(line["venue"] == "paper" for line in transport)
    about_order = [line for line in lines if line["client_order_id"] == coid]
    assert about_order and all(line["venue"] == "paper" for line in about_order), lines


def test_tradenode_run_logs_json_lines_from_the_configs_logging_section(tmp_path: Path) -> None:
    paper = (resources.files("tradenode") / "_resources" / "paper.yaml").read_text()
    config = tmp_path / "node.yaml"
    config.write_text(
        paper
        + "logging: {format: json, level: INFO}\n"
        + "metrics: {port: 0}\n"
        + "alerts:\n  rules: [{kind: kill_switch}]\n"
        + "  webhooks: [{url: 'https://hooks.example/T0KEN-abc123'}]\n"
    )
    process = subprocess.run(
        [sys.executable, "-m", "tradenode", "run", str(config), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert process.returncode == 0, process.stderr
    lines = [json.loads(line) for line in process.stderr.splitlines()]
    assert lines and all(line["node"] == "paper-node" for line in lines)
    assert any(line["message"].startswith("node paper-node started") for line in lines)
    assert "T0KEN-abc123" not in process.stderr + process.stdout
    (url,) = [line for line in process.stdout.splitlines() if "metrics at" in line]
    assert url.startswith("tradenode: metrics at http://127.0.0.1:") and url.endswith("/metrics")


def test_a_binance_node_never_logs_its_api_secret(stream: io.StringIO) -> None:
    from tests._binance_helpers import binance_node, market, node_config, venue_clock
    from tradenode.messages import OrderStatus, Side
    from tradenode.supervision import ManualClock
    from tradenode.testing.venues import DEFAULT_API_SECRET, BinanceVenue

    clock = ManualClock()
    with BinanceVenue(seed=23, clock=venue_clock(clock)) as venue:
        config = parse_config(node_config(venue))
        secrets = secret_values(config)
        assert DEFAULT_API_SECRET in secrets
        configure_logging(
            LoggingConfig(format=LogFormat.JSON, level="DEBUG"),
            node=config.node.name,
            secrets=secrets,
            handler=logging.StreamHandler(stream),
        )
        with binance_node(venue, clock=clock) as h:
            coid = h.do(market(Side.BUY, "0.1"))
            h.wait_status(coid, OrderStatus.FILLED)
            logging.getLogger("tradenode.brokers.binance").warning(
                "on purpose: %s", DEFAULT_API_SECRET, extra={"venue": "binance"}
            )
            h.sync()
    text = stream.getvalue()
    assert DEFAULT_API_SECRET not in text
    on_purpose = [json.loads(line) for line in text.splitlines() if "on purpose" in line]
    assert [line["message"] for line in on_purpose] == ["on purpose: ***"]


def test_an_order_given_as_extra_fills_venue_strategy_and_client_order_id(
    stream: io.StringIO,
) -> None:
    from decimal import Decimal as D

    from tradenode.messages import ModifyOrder, OrderType, Side, SubmitOrder

    configure_logging(
        LoggingConfig(format=LogFormat.JSON, level="INFO"),
        node="n1",
        handler=logging.StreamHandler(stream),
    )
    log = logging.getLogger("tradenode.test")
    order = SubmitOrder(
        client_order_id="c-1",
        strategy_id="s-1",
        venue="v-1",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D("1"),
    )
    log.warning("denied %s", order.client_order_id, extra={"order": order})
    log.warning("explicit wins", extra={"order": order, "venue": "other"})
    modify = ModifyOrder(client_order_id="c-2", venue="v-2", symbol="BTCUSDT", price=D("1"))
    log.warning("a modify has no strategy", extra={"order": modify})
    log.warning("no order at all")
    # This test's lines only: an actor another test left stopping may log on its own
    # thread into the same stream meanwhile.
    lines = [
        line
        for line in map(json.loads, stream.getvalue().splitlines())
        if line["logger"] == "tradenode.test"
    ]
    fields = [(x["node"], x["venue"], x["strategy"], x["client_order_id"]) for x in lines]
    assert fields == [
        ("n1", "v-1", "s-1", "c-1"),
        ("n1", "other", "s-1", "c-1"),
        ("n1", "v-2", None, "c-2"),
        ("n1", None, None, None),
    ]
    assert all("order" not in line for line in lines)  # the message itself is not dumped


def test_a_risk_denials_json_line_carries_the_strategy_and_the_client_order_id(
    stream: io.StringIO,
) -> None:
    from decimal import Decimal as D

    from tests._node_helpers import running_node
    from tradenode.messages import DenialCode, OrderDenied, OrderType, Side

    configure_logging(
        LoggingConfig(format=LogFormat.JSON, level="WARNING"),
        node="testnode",
        handler=logging.StreamHandler(stream),
    )
    with running_node() as h:
        # A display quantity on a venue without native icebergs: UNSUPPORTED_BY_VENUE,
        # the denial the risk guard logs (a strategy asking what the venue cannot do).
        coid = h.do(
            lambda ctx: ctx.submit_order(
                "BTCUSDT",
                Side.BUY,
                D("0.1"),
                order_type=OrderType.LIMIT,
                price=D("1000"),
                display_quantity=D("0.01"),
                venue="paper",
            )
        )
        (denied,) = h.wait_for(OrderDenied, coid)
        assert isinstance(denied, OrderDenied)
        assert denied.code is DenialCode.UNSUPPORTED_BY_VENUE
        # The strategy bridge's own warnings name the strategy and the order too.
        h.do(lambda ctx: ctx.cancel_order("no-such-order"))
        h.sync()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (line,) = [x for x in lines if x["message"].startswith(f"risk: {coid} denied")]
    assert (line["node"], line["venue"], line["strategy"], line["client_order_id"]) == (
        "testnode",
        "paper",
        "s1",
        coid,
    )
    (bridge,) = [x for x in lines if "cancel of unknown order" in x["message"]]
    assert (bridge["strategy"], bridge["client_order_id"]) == ("s1", "no-such-order")
