"""Alerts reach a local webhook receiver; a receiver that is down never slows order flow."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests._binance_helpers import binance_node, venue_clock
from tests._binance_helpers import market as binance_market
from tests._node_helpers import running_node
from tradenode.actors import SetTradingState
from tradenode.messages import OrderRejected, OrderStatus, Side, TradingState
from tradenode.supervision import (
    Actor,
    ChildSpec,
    Intensity,
    ManualClock,
    SupervisorSpec,
    add_child,
)
from tradenode.testing.venues import BinanceVenue


class Receiver:
    """A loopback webhook: records each JSON body once it has answered 200.

    While ``gate`` is clear, every request waits on it (a receiver that never answers)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = 0
        self.gate = threading.Event()
        self.gate.set()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver._changed:
                    receiver.arrived += 1
                    receiver._changed.notify_all()
                receiver.gate.wait()
                self.send_response(200)
                self.end_headers()
                with receiver._changed:
                    receiver.bodies.append(json.loads(body))
                    receiver._changed.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, predicate: Any, timeout: float = 30.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self), timeout), self.bodies

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def alerts_yaml(url: str, *, queue_size: int = 100, rules: str = "") -> str:
    return (
        "alerts:\n"
        f"  queue_size: {queue_size}\n"
        "  rules: [{kind: breaker_open}, {kind: kill_switch, severity: page}" + rules + "]\n"
        f"  webhooks: [{{url: '{url}', timeout: 60, max_attempts: 3, backoff_min: 0.01}}]\n"
    )


def market(venue: str) -> Any:
    return lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue=venue)


def test_breaker_open_and_kill_switch_are_posted_to_the_webhook() -> None:
    with receiver() as hook, running_node(alerts_yaml(hook.url)) as h:
        h.node.venues["paper"].fail_next_requests(3)  # type: ignore[attr-defined]
        failed = [h.do(market("paper")) for _ in range(3)]
        h.sync()
        assert h.node.failure_stats("paper").circuit_state == "open"
        h.clock.advance(0.5)  # the failed requests' retries meet the open circuit
        for coid in failed:
            h.wait_for(OrderRejected, coid)
        hook.wait(lambda r: len(r.bodies) >= 1)
        opened = hook.bodies[0]
        assert (opened["kind"], opened["venue"], opened["node"]) == (
            "breaker_open",
            "paper",
            "testnode",
        )
        assert opened["severity"] == "critical" and "OPEN" in opened["summary"]
        h.node.kill_switch()
        hook.wait(lambda r: len(r.bodies) >= 2)
        killed = hook.bodies[1]
        assert (killed["kind"], killed["severity"]) == ("kill_switch", "page")
        dispatcher = h.node.observability.alerts
        assert dispatcher is not None
        assert (dispatcher.published, dispatcher.dropped) == (2, 0)
        # Its history, newest first: each delivered to the one webhook.
        assert dispatcher.wait_idle(30)
        recent = dispatcher.recent()
        assert [(a["kind"], a["delivery"]) for a in recent] == [
            ("kill_switch", "delivered"),
            ("breaker_open", "delivered"),
        ]
        assert recent[1]["webhooks"] == {"delivered": 1, "failed": 0}


def test_a_receiver_that_never_answers_does_not_slow_order_flow_and_drops_are_counted() -> None:
    rules = ", {kind: order_rejected}"
    with receiver() as hook, running_node(alerts_yaml(hook.url, queue_size=1, rules=rules)) as h:
        hook.gate.clear()  # the receiver takes each request and never answers it
        h.node.venues["paper"].fail_next_requests(3)  # type: ignore[attr-defined]
        for _ in range(3):
            h.do(market("paper"))
        h.sync()
        # The breaker's alert is on the wire, stuck in the receiver.
        hook.wait(lambda r: r.arrived == 1)
        # Orders elsewhere flow to the end while the delivery thread is blocked.
        filled = [h.do(market("paper2")) for _ in range(3)]
        for coid in filled:
            h.wait_status(coid, OrderStatus.FILLED)
        # Refusals at the open circuit: each an alert; the queue holds one, the rest drop.
        refused = [h.do(market("paper")) for _ in range(3)]
        for coid in refused:
            h.wait_for(OrderRejected, coid)
        h.sync()
        dispatcher = h.node.observability.alerts
        assert dispatcher is not None
        assert hook.bodies == [] and hook.arrived == 1
        assert dispatcher.published == 4
        assert dispatcher.dropped == 2
        assert [a["delivery"] for a in dispatcher.recent()] == [
            "dropped",
            "dropped",
            "queued",  # waits in the queue
            "queued",  # on the wire
        ]
        hook.gate.set()
        hook.wait(lambda r: len(r.bodies) == 2)
        assert dispatcher.wait_idle(30)
        assert [(a["kind"], a["delivery"]) for a in dispatcher.recent()] == [
            ("order_rejected", "dropped"),
            ("order_rejected", "dropped"),
            ("order_rejected", "delivered"),
            ("breaker_open", "delivered"),
        ]
        assert [b["kind"] for b in hook.bodies] == ["breaker_open", "order_rejected"]
        assert hook.bodies[1]["details"]["code"] == "CIRCUIT_OPEN"


def test_a_refused_webhook_port_never_slows_orders_and_each_alert_is_given_up_once() -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    with running_node(alerts_yaml(url)) as h:
        h.node.venues["paper"].fail_next_requests(3)  # type: ignore[attr-defined]
        for _ in range(3):
            h.do(market("paper"))
        h.sync()
        filled = [h.do(market("paper2")) for _ in range(3)]
        for coid in filled:
            h.wait_status(coid, OrderStatus.FILLED)
        dispatcher = h.node.observability.alerts
        assert dispatcher is not None
        assert dispatcher.wait_idle(60)
        assert (dispatcher.published, dispatcher.delivered, dispatcher.failed) == (1, 0, 1)
        (alert,) = dispatcher.recent()
        assert (alert["kind"], alert["delivery"]) == ("breaker_open", "failed")
        assert alert["webhooks"] == {"delivered": 0, "failed": 1}


def test_a_real_escalation_is_alerted() -> None:
    class Boom(Actor):
        def receive(self, message: Any) -> Any:
            raise RuntimeError("boom")

    rules = ", {kind: escalation}"
    with receiver() as hook, running_node(alerts_yaml(hook.url, rules=rules)) as h:
        root = h.node.system.root
        assert root is not None
        flaky = SupervisorSpec(
            "flaky", intensity=Intensity(0, 60), children=(ChildSpec("boom", Boom),)
        )
        add_child(root, flaky)
        address = h.node.system.lookup("/testnode/flaky/boom")
        assert address is not None
        address.tell("go")
        hook.wait(lambda r: any(b["kind"] == "escalation" for b in r.bodies))
        (alert,) = [b for b in hook.bodies if b["kind"] == "escalation"]
        assert alert["details"]["path"] == "/testnode/flaky" and "escalated" in alert["summary"]


def test_the_daily_loss_limit_reached_is_alerted() -> None:
    rules = ", {kind: daily_loss, severity: page}"
    extra = "risk: {daily_loss_limit: 1}\n"
    with receiver() as hook, running_node(alerts_yaml(hook.url, rules=rules) + extra) as h:
        bought = h.do(market("paper"))
        h.wait_status(bought, OrderStatus.FILLED)
        h.node.venues["paper"].set_price("BTCUSDT", D("40000"))  # type: ignore[attr-defined]
        sold = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.SELL, D("0.1"), venue="paper"))
        h.wait_status(sold, OrderStatus.FILLED)  # about 1000 lost: the limit is 1
        hook.wait(lambda r: any(b["kind"] == "daily_loss" for b in r.bodies))
        (alert,) = [b for b in hook.bodies if b["kind"] == "daily_loss"]
        assert alert["severity"] == "page" and "daily PnL" in alert["summary"]


def test_a_position_drift_at_the_local_binance_venue_is_alerted() -> None:
    clock = ManualClock()
    rules = ", {kind: drift, venue: binance}"
    with (
        receiver() as hook,
        BinanceVenue(seed=23, clock=venue_clock(clock)) as venue,
        binance_node(venue, alerts_yaml(hook.url, rules=rules), clock=clock) as h,
    ):
        coid = h.do(binance_market(Side.BUY, "0.2"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.periodic_check()
        venue.deposit("BTC", D("1"))  # money our fills do not explain
        h.periodic_check()
        h.periodic_check()  # seen twice: a drift
        hook.wait(lambda r: any(b["kind"] == "drift" for b in r.bodies))
        drift = next(b for b in hook.bodies if b["kind"] == "drift")
        assert (drift["venue"], drift["details"]["asset"]) == ("binance", "BTC")


def test_a_kill_switch_while_already_halted_is_still_alerted() -> None:
    with receiver() as hook, running_node(alerts_yaml(hook.url)) as h:
        h.node.risk.ask(SetTradingState(TradingState.HALTED, "operator halt"))
        h.node.kill_switch(flatten=True)
        hook.wait(lambda r: len(r.bodies) == 1)
        assert hook.bodies[0]["kind"] == "kill_switch"
        assert hook.bodies[0]["details"] == {"flatten": "true"}
