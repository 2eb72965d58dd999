"""The session's reader answers an ``order.place`` as soon as the order's state is read.

The reply (the breaker's acknowledgement) needs only the order's state and the
venue's counters; the FULL answer's trades are read after it and told to the OMS
with the acceptance. Trades that cannot be read never unmake the acceptance: the
OMS still hears the order accepted, and the actor counts the unreadable payload
and reconciles through a restart, which fetches the order's trades again (the
order stays tracked with its executed quantity and nothing forwarded).

``_PlacementAnswer`` and the actor's ``_on_answered`` are driven directly, with
one recorder playing the breaker, the OMS and the actor's own mailbox.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests._placement_answers import Mailbox, answer_placement
from tradenode import BrokerError
from tradenode.actors import BrokerReply, BrokerRequest, Outcome
from tradenode.brokers.binance import (
    BinanceBroker,
    BinanceCredentials,
    BinanceEndpoints,
    BinanceLink,
)

# The reader's answering object, the bookkeeping message it sends and the tracked
# order are the actor's internals, driven here without a session or a venue.
from tradenode.brokers.binance._actor import TrackedOrder, _Answered

# A venue answer as the session hands it over.
from tradenode.messages import OrderAccepted, OrderFilled

BROKER = "binance"
COID = "reply-1"


def _body(fills: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "orderId": 99,
        "orderListId": -1,
        "clientOrderId": COID,
        "transactTime": 1700000000000,
        "price": "0.00",
        "origQty": "0.002",
        "executedQty": "0.002",
        "cummulativeQuoteQty": "100.00",
        "status": "FILLED",
        "timeInForce": "GTC",
        "type": "MARKET",
        "side": "BUY",
        "workingTime": 1700000000000,
        "fills": fills,
    }


def _fill(trade_id: Any, qty: str = "0.001") -> dict[str, Any]:
    return {
        "price": "50000.00",
        "qty": qty,
        "commission": "0",
        "commissionAsset": "BTC",
        "tradeId": trade_id,
    }


def _answer(body: dict[str, Any]) -> tuple[list[tuple[str, Any]], BrokerRequest]:
    return answer_placement(body, client_order_id=COID, quantity=Decimal("0.002"), seq=7)


def _broker() -> BinanceBroker:
    return BinanceBroker(
        BROKER,
        credentials=BinanceCredentials("key", "secret"),
        endpoints=BinanceEndpoints("http://venue", "ws://venue", "ws://venue"),
        reports_to=Mailbox("oms", []),  # type: ignore[arg-type]
        link=BinanceLink(),
    )


def test_reply_then_acceptance_then_fills_then_bookkeeping() -> None:
    log, _ = _answer(_body([_fill(1), _fill(2)]))
    roles = [role for role, _ in log]
    assert roles == ["breaker", "oms", "oms", "oms", "actor"]
    reply = log[0][1]
    assert isinstance(reply, BrokerReply) and reply.seq == 7 and reply.outcome is Outcome.OK
    assert isinstance(log[1][1], OrderAccepted) and log[1][1].client_order_id == COID
    assert [type(m) for _, m in log[2:4]] == [OrderFilled, OrderFilled]
    answered = log[4][1]
    assert isinstance(answered, _Answered) and answered.unreadable_fills is None
    assert len(answered.fills) == 2


def test_unreadable_fills_keep_the_acceptance_and_reconcile_through_a_restart() -> None:
    log, _ = _answer(_body([_fill(1), _fill("not-an-id")]))
    assert [role for role, _ in log] == ["breaker", "oms", "actor"]
    reply, accepted, answered = (m for _, m in log)
    assert isinstance(reply, BrokerReply) and reply.outcome is Outcome.OK
    assert isinstance(accepted, OrderAccepted)
    assert isinstance(answered, _Answered) and answered.fills == ()
    assert answered.unreadable_fills is not None

    broker = _broker()
    broker.link.orders[COID] = TrackedOrder("BTCUSDT")
    with pytest.raises(BrokerError, match="reconciling through a restart"):
        broker._on_answered(answered)
    assert broker.link.malformed_payloads == 1
    tracked = broker.link.orders[COID]
    assert tracked.venue_filled == Decimal("0.002") and not tracked.settled
    assert tracked.accept_told


def test_an_unreadable_order_goes_to_the_actor_unanswered() -> None:
    """Without the order's state nothing is known accepted: the actor maps the
    answer as for REST (no reply or report from the reader)."""
    body = _body([_fill(1)])
    del body["orderId"]
    log, _ = _answer(body)
    assert [role for role, _ in log] == ["actor"]
