"""An ``order.place`` answered straight from the session's reader (the WebSocket
API's fast path): the breaker's reply goes first, the OMS hears the order accepted
exactly once, and its fills are never lost.

A taker order's FULL answer settles it (every trade comes with the answer), so the
actor forgets it before the account's stream reports it NEW: that late NEW must not
become a second ``OrderAccepted`` (the OMS would ignore it, after journaling and
counting it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tradenode.actors import BrokerReply, BrokerRequest, Outcome
from tradenode.brokers.binance import (
    BinanceBroker,
    BinanceEndpoints,
    BinanceLink,
    Ed25519Credentials,
)
from tradenode.messages import OrderAccepted, OrderFilled, OrderType, Side, SubmitOrder
from tradenode.supervision import Actor, ActorSystem, ChildSpec, SupervisorSpec
from tradenode.testing.venues import BinanceVenue

ED_KEY = "tradenode-fast-answer-key"
ORDERS = 6


class Recorder(Actor):
    """Plays the breaker and the OMS: every message, in arrival order."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.changed = threading.Condition()

    def receive(self, message: Any) -> Any:
        with self.changed:
            self.seen.append(message)
            self.changed.notify_all()
        return None

    def wait(self, predicate: Any, timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.seen), timeout), self.seen


@pytest.fixture
def keys() -> tuple[str, str]:
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private_pem.decode(), public_pem.decode()


@pytest.fixture
def placed(keys: tuple[str, str]) -> Iterator[tuple[ActorSystem, Recorder]]:
    """``ORDERS`` market orders placed over a logged-on WebSocket API connection,
    one at a time, each answered and filled; then the node is quiescent."""
    with BinanceVenue(seed=11, ed25519_public_keys={ED_KEY: keys[1]}) as venue:
        system = ActorSystem(name="fast")
        link = BinanceLink()
        recorders: list[Recorder] = []

        def recorder() -> Recorder:
            recorders.append(Recorder())
            return recorders[-1]

        def broker() -> BinanceBroker:
            address = system.lookup("/fast/recorder")
            assert address is not None
            return BinanceBroker(
                "binance",
                credentials=Ed25519Credentials.from_pem(ED_KEY, keys[0]),
                endpoints=BinanceEndpoints(venue.rest_url, venue.ws_api_url, venue.stream_url),
                reports_to=address,
                link=link,
                symbols=("BTCUSDT",),
                order_entry="websocket",
            )

        system.start(
            SupervisorSpec(
                "fast", children=(ChildSpec("recorder", recorder), ChildSpec("broker", broker))
            )
        )
        try:
            assert link.wait_for_reconciliations(1, timeout=20)
            target = system.lookup("/fast/broker")
            me = system.lookup("/fast/recorder")
            assert target is not None and me is not None
            rec = recorders[-1]
            for seq in range(1, ORDERS + 1):
                coid = f"fast{seq}"
                order = SubmitOrder(
                    client_order_id=coid,
                    strategy_id="fast",
                    venue="binance",
                    symbol="BTCUSDT",
                    side=Side.BUY if seq % 2 else Side.SELL,
                    order_type=OrderType.MARKET,
                    quantity=Decimal("0.001"),
                )
                target.tell(BrokerRequest(seq, order, me))
                rec.wait(
                    lambda seen, seq=seq, coid=coid: (
                        any(isinstance(m, BrokerReply) and m.seq == seq for m in seen)
                        and any(
                            isinstance(m, OrderFilled) and m.client_order_id == coid for m in seen
                        )
                    )
                )
            system.wait_quiescent(20)
            yield system, rec
        finally:
            system.shutdown(20)


def test_each_order_is_answered_ok_and_heard_accepted_exactly_once(
    placed: tuple[ActorSystem, Recorder],
) -> None:
    _, rec = placed
    replies = [m for m in rec.seen if isinstance(m, BrokerReply)]
    assert sorted(r.seq for r in replies) == list(range(1, ORDERS + 1))
    assert all(r.outcome is Outcome.OK for r in replies)
    accepted = [m.client_order_id for m in rec.seen if isinstance(m, OrderAccepted)]
    assert sorted(accepted) == sorted(f"fast{seq}" for seq in range(1, ORDERS + 1))


def test_the_reply_comes_before_the_orders_reports(placed: tuple[ActorSystem, Recorder]) -> None:
    """The reader tells the breaker first: the acknowledgement waits for nothing."""
    _, rec = placed
    for seq in range(1, ORDERS + 1):
        coid = f"fast{seq}"
        reply_at = next(
            i for i, m in enumerate(rec.seen) if isinstance(m, BrokerReply) and m.seq == seq
        )
        first_report = next(
            i
            for i, m in enumerate(rec.seen)
            if isinstance(m, OrderAccepted | OrderFilled) and m.client_order_id == coid
        )
        assert reply_at < first_report


def test_every_fill_reaches_the_oms(placed: tuple[ActorSystem, Recorder]) -> None:
    """From the FULL answer, and again from the stream (the OMS keeps the first by
    execution id): nothing is lost on the fast path."""
    _, rec = placed
    for seq in range(1, ORDERS + 1):
        fills = [
            m for m in rec.seen if isinstance(m, OrderFilled) and m.client_order_id == f"fast{seq}"
        ]
        assert fills
        assert sum(f.last_quantity for f in {f.execution_id: f for f in fills}.values()) == (
            Decimal("0.001")
        )
