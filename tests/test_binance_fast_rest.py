"""A REST placement is answered from the session's thread, through a lean transport.

The reply to the breaker goes as soon as the venue's answer is read, from the
session's trio thread (``_PlacementAnswer`` with ``tells_oms`` false), with the
venue's counters from the answer's headers; the OMS hears the acceptance from
the actor (``_on_answered``), the one thread that also handles the account's
stream, so an acceptance the stream told first is not told again. Requests go
through ``httpcore``'s pool directly (``_http.RestTransport``): it must answer
as ``httpx.AsyncClient`` does (status, headers, body), fail with the same typed
errors, and give way to ``httpx`` whenever the environment names a proxy.
"""

from __future__ import annotations

import socket
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from tests._placement_answers import Mailbox, answer_placement
from tradenode import BrokerConnectionError, BrokerTimeoutError
from tradenode.actors import BrokerReply, Outcome
from tradenode.brokers.binance import (
    BinanceBroker,
    BinanceCredentials,
    BinanceEndpoints,
    BinanceLink,
)

# The reader's answering object, the bookkeeping message and the tracked order are
# the actor's internals, driven here without a session or a venue.
from tradenode.brokers.binance._actor import TrackedOrder, _Answered

# How long the reader stays off the GIL after an order.place answer, pinned below.
from tradenode.brokers.binance._handoff import CASCADE_SECONDS

# The two REST transports the session chooses between, compared with each other.
from tradenode.brokers.binance._http import HttpxTransport, RestTransport, open_rest_transport

# A venue answer as the session hands it over.
from tradenode.messages import OrderAccepted
from tradenode.testing.venues import BinanceVenue

BROKER = "binance"
COID = "rest-1"
HEADERS = {"x-mbx-used-weight-1m": "7", "x-mbx-order-count-10s": "1", "content-type": "json"}
LIMITS = {"REQUEST_WEIGHT:1M": (6000.0, 60.0), "ORDERS:10S": (50.0, 10.0)}


BODY = {
    "symbol": "BTCUSDT",
    "orderId": 41,
    "orderListId": -1,
    "clientOrderId": COID,
    "transactTime": 1700000000000,
    "price": "0.00",
    "origQty": "0.001",
    "executedQty": "0.001",
    "cummulativeQuoteQty": "50.00",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "BUY",
    "workingTime": 1700000000000,
}


def _answered_over_rest() -> tuple[list[tuple[str, Any]], _Answered]:
    log, _ = answer_placement(
        BODY,
        client_order_id=COID,
        quantity=Decimal("0.001"),
        seq=3,
        sent_at=12.5,
        headers=HEADERS,
        rate_limits=LIMITS,
        tells_oms=False,
    )
    answered = log[-1][1]
    assert isinstance(answered, _Answered)
    return log, answered


def _broker(log: list[tuple[str, Any]]) -> BinanceBroker:
    broker = BinanceBroker(
        BROKER,
        credentials=BinanceCredentials("key", "secret"),
        endpoints=BinanceEndpoints("http://venue", "ws://venue", "ws://venue"),
        reports_to=Mailbox("oms", log),  # type: ignore[arg-type]
        link=BinanceLink(),
    )
    # Not started under a system: the one thing _on_answered asks of its context.
    broker.context = SimpleNamespace(now_ns=lambda: 99)  # type: ignore[assignment]
    return broker


def test_the_reply_goes_from_the_session_thread_with_the_headers_counters() -> None:
    log, answered = _answered_over_rest()
    assert [role for role, _ in log] == ["breaker", "actor"]
    reply = log[0][1]
    assert isinstance(reply, BrokerReply) and reply.seq == 3 and reply.outcome is Outcome.OK
    assert {(r.counter, r.used, r.limit, r.sent_at) for r in reply.rates} == {
        ("REQUEST_WEIGHT:1M", 7.0, 6000.0, 12.5),
        ("ORDERS:10S", 1.0, 50.0, 12.5),
    }
    assert not answered.told and answered.fills == () and answered.unreadable_fills is None


@pytest.mark.parametrize(
    ("tells_oms", "expected"),
    [
        # Over REST the actor tells the OMS: the GIL goes to the breaker and the actor,
        # both just woken, before the session's thread reads the account's stream on.
        (False, [("breaker", None), ("actor", None), ("hand-over", 0.0)]),
        # Over the WebSocket API the reader tells the OMS itself, then stays off the
        # GIL while what it woke runs its course, and the actor's bookkeeping comes last.
        (True, [("breaker", None), ("oms", None), ("hand-over", CASCADE_SECONDS), ("actor", None)]),
    ],
)
def test_where_the_answering_thread_hands_the_gil_over(
    monkeypatch: pytest.MonkeyPatch, tells_oms: bool, expected: list[tuple[str, float | None]]
) -> None:
    log: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        "tradenode.brokers.binance._actor.hand_over_gil",
        lambda seconds=0.0: log.append(("hand-over", seconds)),
    )
    answer_placement(
        BODY,
        client_order_id=COID,
        quantity=Decimal("0.001"),
        seq=3,
        headers=HEADERS,
        rate_limits=LIMITS,
        tells_oms=tells_oms,
        log=log,
    )
    assert [(role, told if role == "hand-over" else None) for role, told in log] == expected


def test_the_actor_tells_the_oms_the_acceptance_once() -> None:
    _, answered = _answered_over_rest()
    told: list[tuple[str, Any]] = []
    broker = _broker(told)
    broker.link.orders[COID] = TrackedOrder("BTCUSDT")
    broker._on_answered(answered)
    assert [type(message) for _, message in told] == [OrderAccepted]
    accepted = told[0][1]
    assert accepted.client_order_id == COID and accepted.venue_order_id == "41"
    assert broker.link.used_weight == {"1M": 7} and broker.link.order_count == {"10S": 1}
    assert broker.link.client_ids[("BTCUSDT", 41)] == COID


def test_an_acceptance_the_stream_told_first_is_not_told_again() -> None:
    _, answered = _answered_over_rest()
    told: list[tuple[str, Any]] = []
    broker = _broker(told)
    broker.link.orders[COID] = TrackedOrder("BTCUSDT", accept_told=True)
    broker._on_answered(answered)
    assert told == []


def _both(venue_url: str, **settings: Any) -> list[Any]:
    options = {"request_timeout": 5.0, "connect_timeout": 5.0, "max_connections": 4}
    options.update(settings)
    return [
        RestTransport(venue_url, broker=BROKER, **options),
        HttpxTransport(venue_url, broker=BROKER, **options),
    ]


def test_the_lean_transport_answers_as_httpx_does() -> None:
    with BinanceVenue(seed=3) as venue:

        async def main() -> list[list[tuple[int, bytes, dict[str, str]]]]:
            seen: list[list[tuple[int, bytes, dict[str, str]]]] = []
            for transport in _both(venue.rest_url):
                answers = []
                for method, target, key in (
                    ("GET", "/api/v3/ticker/price?symbol=BTCUSDT", None),
                    ("GET", "/api/v3/ticker/price?symbol=NOPE", None),
                    ("POST", "/api/v3/order?symbol=BTCUSDT", "key"),
                    ("GET", "/api/v3/time", None),
                ):
                    answer = await transport.request(method, target, key)
                    # The venue's counters go on counting across the two: names only.
                    headers = {
                        name: value if name == "content-type" else "counted"
                        for name, value in answer.headers.items()
                        if name.startswith("x-mbx-") or name == "content-type"
                    }
                    assert all(
                        answer.headers[name].isdigit() for name in headers if name != "content-type"
                    )
                    body = answer.content if "time" not in target else b""
                    answers.append((answer.status, body, headers))
                await transport.aclose()
                seen.append(answers)
            return seen

        lean, reference = trio.run(main)
    assert [status for status, _, _ in lean] == [200, 400, 401, 200]
    assert lean == reference


def test_a_proxy_in_the_environment_keeps_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    options = {"request_timeout": 1.0, "connect_timeout": 1.0, "max_connections": 1}
    assert isinstance(open_rest_transport("https://venue", broker=BROKER, **options), RestTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert isinstance(
        open_rest_transport("https://venue", broker=BROKER, **options), HttpxTransport
    )


def test_transport_failures_are_typed_alike() -> None:
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (in the kernel's backlog) and never answers
    try:

        async def main() -> None:
            for transport in _both(f"http://127.0.0.1:{refusing.getsockname()[1]}"):
                with pytest.raises(BrokerConnectionError, match=r"GET /api/v3/time: \w+"):
                    await transport.request("GET", "/api/v3/time?x=1", None)
                await transport.aclose()
            url = f"http://127.0.0.1:{silent.getsockname()[1]}"
            for transport in _both(url, request_timeout=0.2):
                with pytest.raises(BrokerTimeoutError, match=r"no answer within 0\.2s") as raised:
                    await transport.request("GET", "/api/v3/time?secret=1", None)
                assert "secret" not in str(raised.value)
                await transport.aclose()

        trio.run(main)
    finally:
        refusing.close()
        silent.close()
