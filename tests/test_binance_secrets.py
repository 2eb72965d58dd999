"""API keys and secrets never appear in logs, reprs, status output or exceptions.

A node trades against the local Binance venue with a distinctive key and
secret, through success, venue errors, a refused signature and restarts;
then everything it could have printed is searched for them.
"""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Iterator

import pytest

from tradenode import ConfigError, Node, parse_config
from tradenode.brokers.binance import BinanceCredentials
from tradenode.messages import OrderRejected, OrderStatus, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)
from tradenode.testing.venues import BinanceVenue

from ._binance_helpers import BinanceHarness, limit, market, venue_clock

KEY = "kEyPUBLICxq7Zt3Lm9Wv2Rr8Ss4Yy6Uu1Oo5Ii0Pp3Aa7Dd2Ff9Gg4Hh8Jj1KkLl"
SECRET = "sEcRETshh8Hq2Vw6Ex1Rt5Ty9Ui3Op7As4Df8Gh2Jk6Lz1Xc5Vb9Nm3Qw7Er0Ty"
WRONG_SECRET = "wRoNgSeCrEt4Qa8Zx2Cv6Bn0Mk3Lp7Oi1Uy5Tr9Ew3Qa7Sd1Fg5Hj9Kl2Zx6Cv"
SECRETS = (KEY, SECRET, WRONG_SECRET)

CONFIG = """
node: {{name: bnode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: binance
    kind: binance
    binance:
      environment: custom
      api_key: ${{SECRET_TEST_KEY}}
      api_secret: ${{SECRET_TEST_SECRET}}
      rest_url: {rest}
      ws_api_url: {ws_api}
      stream_url: {stream}
      symbols: [BTCUSDT]
oms: {{ack_timeout: 30}}
"""


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log record of every logger, at every level, formatted with tracebacks."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into {where}"
        assert secret[8:40] not in text, f"part of a secret leaked into {where}"


def test_no_secret_in_logs_reprs_status_or_exceptions(captured: io.StringIO) -> None:
    clock = ManualClock()
    environ = {"SECRET_TEST_KEY": KEY, "SECRET_TEST_SECRET": SECRET}
    with BinanceVenue(seed=5, api_key=KEY, api_secret=SECRET, clock=venue_clock(clock)) as venue:
        text = CONFIG.format(rest=venue.rest_url, ws_api=venue.ws_api_url, stream=venue.stream_url)
        config = parse_config(text, environ=environ)
        node = Node(config, clock=clock)
        node.start()
        try:
            h = BinanceHarness(node, clock, venue)
            filled = h.do(market(Side.BUY, "0.2"))
            h.wait_status(filled, OrderStatus.FILLED)
            refused = h.do(limit(Side.BUY, "49000.00", "30"))
            assert h.wait_for(OrderRejected, refused)[0].code == "-2010"
            # Resting before the streams drop: one sent while they drop may be lost
            # with the socket, and its lookup then waits out the acceptance window on
            # this manual clock. Here the reconnect finds it at the venue.
            resting = h.do(limit(Side.BUY, "49000.00", "0.1"))
            h.wait_status(resting, OrderStatus.ACCEPTED)
            events = EventRecorder()
            node.system.events.subscribe(events)
            venue.drop_streams()
            scheduled = events.wait_for(
                lambda e: (
                    isinstance(e, SupervisionEvent)
                    and e.kind is SupervisionEventKind.RESTART_SCHEDULED
                )
            )[0]
            clock.advance(scheduled.delay)
            events.wait_for(
                lambda e: (
                    isinstance(e, SupervisionEvent)
                    and e.kind is SupervisionEventKind.RESTARTED
                    and e.path == scheduled.path
                )
            )
            assert h.order(resting).status is OrderStatus.ACCEPTED
            status = node.status()
            assert_clean(json.dumps(status, default=str), "node.status()")
            assert_clean(repr(config), "repr(config)")
            assert_clean(str(config.model_dump()), "config.model_dump()")
            assert_clean(repr(node.venues["binance"]), "repr(link)")
            assert_clean(repr(BinanceCredentials(KEY, SECRET)), "repr(credentials)")
            assert_clean(repr(venue), "repr(venue)")
        finally:
            node.stop(timeout=20)

        wrong = parse_config(
            text, environ={"SECRET_TEST_KEY": KEY, "SECRET_TEST_SECRET": WRONG_SECRET}
        )
        refused_node = Node(wrong, clock=clock)
        refused_node.start()
        try:
            assert refused_node.status()["connections"]["binance"]["connections"] == 0
        finally:
            refused_node.stop(timeout=20)

    with pytest.raises(ConfigError) as bad:
        parse_config(
            text.replace("${SECRET_TEST_SECRET}", "[" + SECRET + "]"),
            environ=environ,
        )
    assert_clean(str(bad.value), "a config error")
    assert_clean("".join(traceback.format_exception(bad.value)), "a config traceback")
    logs = captured.getvalue()
    assert "binance: connected and reconciled" in logs
    assert "-1022" in logs or "Signature" in logs
    assert_clean(logs, "the logs")


def test_credentials_refuse_to_print_themselves() -> None:
    credentials = BinanceCredentials(KEY, SECRET)
    assert SECRET not in repr(credentials)
    assert SECRET not in str(credentials)
    assert KEY not in repr(credentials)
