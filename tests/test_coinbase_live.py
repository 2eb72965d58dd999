"""The Coinbase adapter's signing, endpoint layer and codec against Coinbase's sandbox.

Opt in with ``pytest -m live`` and ``COINBASE_API_KEY_NAME`` /
``COINBASE_PRIVATE_KEY`` (a CDP key) in the environment; skipped otherwise.
CI never runs these: they need the network and credentials.

Coinbase's sandbox (``api-sandbox.coinbase.com``) is static and mocked: REST
only, canned answers in the production format, no WebSocket. So these tests
send what the adapter sends (its JWTs, its paths and bodies, through its
endpoint layer) and read the answers with its codec: the formats and the
canned refusals (``X-Sandbox`` scenarios) are Coinbase's own. The node's
user channel cannot be exercised there; the local venue covers it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from tradenode import parse_config
from tradenode.brokers.coinbase import COINBASE, CdpCredentials, build_jwt, jwt_uri

# The endpoint layer and codec are internal: the live test drives them directly.
from tradenode.brokers.coinbase._codec import (
    parse_accounts_page,
    parse_create_answer,
    parse_error,
    parse_fills_page,
    parse_orders_page,
)
from tradenode.brokers.coinbase._endpoints import CoinbaseApi, RestResult  # the typed calls

pytestmark = pytest.mark.live

KEY_NAME = os.environ.get("COINBASE_API_KEY_NAME")
PRIVATE_KEY = os.environ.get("COINBASE_PRIVATE_KEY")
SANDBOX = "https://api-sandbox.coinbase.com"

needs_credentials = pytest.mark.skipif(
    not (KEY_NAME and PRIVATE_KEY), reason="COINBASE_API_KEY_NAME/COINBASE_PRIVATE_KEY not set"
)


def sandbox_api(client: httpx.AsyncClient, scenario: str | None = None) -> CoinbaseApi:
    assert KEY_NAME and PRIVATE_KEY
    credentials = CdpCredentials.from_text(KEY_NAME, PRIVATE_KEY)
    host = urlsplit(SANDBOX).netloc

    async def send(
        method: str,
        path: str,
        query: Any = (),
        body: Mapping[str, Any] | None = None,
        *,
        public: bool = False,
    ) -> RestResult:
        headers = {"Content-Type": "application/json"}
        if not public:
            token = build_jwt(credentials, now=int(time.time()), uri=jwt_uri(method, host, path))
            headers["Authorization"] = f"Bearer {token}"
        if scenario is not None:
            headers["X-Sandbox"] = scenario
        response = await client.request(
            method,
            path,
            params=list(query),
            content=None if body is None else json.dumps(body),
            headers=headers,
        )
        if response.status_code >= 300:
            return RestResult(
                response.status_code, error=parse_error(response.status_code, response.content)
            )
        return RestResult(response.status_code, response.json())

    return CoinbaseApi(send)


@needs_credentials
def test_the_sandbox_answers_in_formats_the_codec_reads() -> None:
    async def run() -> None:
        async with httpx.AsyncClient(base_url=SANDBOX, timeout=20) as client:
            api = sandbox_api(client)
            accounts = await api.accounts()
            assert accounts.error is None, accounts.error
            parse_accounts_page(accounts.body)
            listed = await api.list_orders(order_status=["OPEN"])
            assert listed.error is None, listed.error
            parse_orders_page(listed.body)
            fills = await api.fills()
            assert fills.error is None, fills.error
            parse_fills_page(fills.body)
            placed = await api.create_order(
                {
                    "client_order_id": uuid.uuid4().hex,
                    "product_id": "BTC-USD",
                    "side": "BUY",
                    "order_configuration": {
                        "limit_limit_gtc": {
                            "base_size": "0.0001",
                            "limit_price": "1000",
                            "post_only": True,
                        }
                    },
                }
            )
            assert placed.error is None, placed.error
            assert parse_create_answer(placed.body).success

    trio.run(run)


@needs_credentials
def test_the_sandboxs_insufficient_fund_refusal_is_a_business_refusal() -> None:
    async def run() -> None:
        async with httpx.AsyncClient(base_url=SANDBOX, timeout=20) as client:
            api = sandbox_api(client, scenario="PostOrder_insufficient_fund")
            answer = await api.create_order(
                {
                    "client_order_id": uuid.uuid4().hex,
                    "product_id": "BTC-USD",
                    "side": "BUY",
                    "order_configuration": {"market_market_ioc": {"base_size": "1000"}},
                }
            )
            assert answer.error is None, answer.error
            refused = parse_create_answer(answer.body)
            assert not refused.success and "INSUFFICIENT_FUND" in refused.code

    trio.run(run)


@needs_credentials
def test_the_sandbox_config_parses_with_the_key_from_the_environment() -> None:
    with open("config/coinbase-sandbox.yaml", encoding="utf-8") as file:
        config = parse_config(file.read())
    (venue,) = config.venues
    assert venue.kind == COINBASE.name
    assert PRIVATE_KEY is not None and PRIVATE_KEY not in repr(config)
