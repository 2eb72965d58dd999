"""A running node whose ``coinbase`` venue is the local fake Coinbase on loopback."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import jwt

from tradenode import Node, parse_config
from tradenode.brokers.coinbase import CoinbaseLink
from tradenode.messages import OrderType, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
)
from tradenode.testing.venues import CoinbaseVenue

from ._node_helpers import VenueHarness, broker_event

D = Decimal
K = SupervisionEventKind
BROKER = "/cnode/brokers/coinbase/broker"

VENUE_CONFIG = """
node: {{name: cnode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: coinbase
    kind: coinbase
    coinbase:
      environment: custom
      api_key_name: {key_name}
      private_key: {private_key}
      rest_url: {rest}
      ws_url: {ws}
      ws_user_url: {ws_user}
      products: [{products}]
      request_timeout: {request_timeout}
      stream_timeout: {stream_timeout}
      check_interval: {check_interval}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class CoinbaseHarness(VenueHarness[CoinbaseLink, CoinbaseVenue]):
    VENUE = "coinbase"
    LINK = CoinbaseLink
    BROKER = BROKER


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return broker_event(BROKER, kind, generation)


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the node's manual clock (epoch ms): JWT times, GTD, Retry-After agree."""
    return lambda: clock.time_ns() // 1_000_000


def node_config(
    venue: CoinbaseVenue,
    *,
    products: tuple[str, ...] = ("BTC-USD", "ETH-USD"),
    request_timeout: float = 5.0,
    stream_timeout: float = 30.0,
    check_interval: float = 0.0,
) -> str:
    key = venue.key
    assert key is not None, "the venue made no key"
    return VENUE_CONFIG.format(
        key_name=json.dumps(key.name),
        private_key=json.dumps(key.private_key_pem),
        rest=venue.rest_url,
        ws=venue.ws_url,
        ws_user=venue.ws_user_url,
        products=", ".join(products),
        request_timeout=request_timeout,
        stream_timeout=stream_timeout,
        check_interval=check_interval,
    )


@contextmanager
def coinbase_node(
    venue: CoinbaseVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    **config: Any,
) -> Iterator[CoinbaseHarness]:
    clock = clock or ManualClock()
    node = Node(parse_config(node_config(venue, **config) + extra_yaml), clock=clock)
    supervision = EventRecorder()
    node.system.events.subscribe(supervision)
    node.start()
    try:
        yield CoinbaseHarness(node, clock, venue, supervision)
    finally:
        node.stop(timeout=20)


def market(side: Side, size: str, symbol: str = "BTC-USD", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(size), venue="coinbase", **kw)


def limit(side: Side, price: str, size: str, symbol: str = "BTC-USD", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(size), order_type=OrderType.LIMIT, price=D(price), venue="coinbase", **kw
    )


def stop_limit(
    side: Side, stop: str, price: str, size: str, symbol: str = "BTC-USD", **kw: Any
) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol,
        side,
        D(size),
        order_type=OrderType.STOP_LIMIT,
        stop_price=D(stop),
        price=D(price),
        venue="coinbase",
        **kw,
    )


def post_as_another_client(venue: CoinbaseVenue, now_s: int, body: Mapping[str, Any]) -> Any:
    """``POST /orders`` signed with PyJWT (an SDK-style JWT), as any other client of the key."""
    key = venue.key
    assert key is not None
    path = "/api/v3/brokerage/orders"
    host = venue.rest_url.split("://", 1)[1]
    token = jwt.encode(
        {
            "sub": key.name,
            "iss": "cdp",
            "nbf": now_s,
            "exp": now_s + 120,
            "uri": f"POST {host}{path}",
        },
        key.private_key_pem,
        algorithm="ES256",
        headers={"kid": key.name, "nonce": secrets.token_hex()},
    )
    with httpx.Client() as http:
        answer = http.post(
            venue.rest_url + path,
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["success"], result
    return result
