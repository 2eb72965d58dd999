"""Structured logs: JSON lines with the context fields, readable text otherwise, no secret ever."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

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
    yield buffer
    root = logging.getLogger()
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
