"""The router hears the OMS's order events only once it has routed an order.

Every event it acts on concerns an order it routed (venue ``auto``) that may
still fail over; an order that names its venue never becomes one, so until the
first routed order the router is not woken for any accept or fill. Counted in
messages, never timed.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

# The router's actor and its approval timer are internal: the restart test crashes it
# through the handler of that timer.
from tradenode.actors._routing import RouterActor, _ApprovalDeadline
from tradenode.messages import OrderFilled, OrderRejected, OrderStatus, Side

from ._node_helpers import Harness, running_node

ROUTED = """
instruments:
  BTC-USD: {venues: {paper: BTCUSDT, paper2: BTCUSDT}}
routing: {policy: preferred}
"""


def auto(side: Side, quantity: str) -> Any:
    return lambda ctx: ctx.submit_order("BTC-USD", side, D(quantity), venue="auto")


def market(side: Side, quantity: str, venue: str = "paper") -> Any:
    return lambda ctx: ctx.submit_order("BTCUSDT", side, D(quantity), venue=venue)


def router_handled(h: Harness) -> dict[str, int]:
    path = h.node.directory.router().path
    return {kind: n for (p, kind), n in h.node.system.messages_handled().items() if p == path}


def test_orders_that_name_their_venue_never_wake_the_router_with_their_events() -> None:
    with running_node(ROUTED) as h:
        h.strategy()
        h.sync()
        before = router_handled(h)
        coids = [h.do(market(Side.BUY, "0.1")) for _ in range(3)]
        for coid in coids:
            h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        after = router_handled(h)
        woken = {kind: n - before.get(kind, 0) for kind, n in after.items()}
        # Not even the orders: a FULL_AUTO order that names its venue goes from the
        # strategy to the risk guard itself (``DirectLane``), the router would only
        # have forwarded it.
        assert {kind: n for kind, n in woken.items() if n} == {}
        # A routed order then makes it listen: it hears that order's accept.
        coid = h.do(auto(Side.BUY, "0.1"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        assert router_handled(h).get("OrderAccepted", 0) >= 1


def test_a_restarted_router_with_a_routed_order_pending_still_fails_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """paper fails in transport three times: the routed order, pending while the router
    restarts, is refused CIRCUIT_OPEN after the restart; the new incarnation (subscribed
    because an attempt is pending) sends it to paper2."""
    with running_node(ROUTED) as h:
        venue = h.node.venues["paper"]
        venue.fail_next_requests(3)
        for _ in range(2):
            h.do(market(Side.BUY, "0.1"))
        coid = h.do(auto(Side.BUY, "0.3"))
        h.sync()

        def boom(self: RouterActor, approval_id: str) -> None:
            raise RuntimeError("router crash for the test")

        monkeypatch.setattr(RouterActor, "_on_deadline", boom)
        h.node.directory.router().tell(_ApprovalDeadline("crash"))
        h.sync()
        monkeypatch.undo()
        assert h.node.system.events.restart_counts().get(h.node.directory.router().path, 0) >= 1
        h.clock.advance(0.5)
        h.sync()
        rejection = h.wait_for(OrderRejected, coid)[0]
        assert rejection.code == "CIRCUIT_OPEN"
        fill = h.events().wait_for(
            lambda m: isinstance(m, OrderFilled) and m.venue == "paper2", count=1
        )[0]
        replacement = h.wait_status(fill.client_order_id, OrderStatus.FILLED)
        assert replacement.order.route is not None
        assert replacement.order.route.startswith("failover -> paper2")
        assert h.node.router_status()["failovers"] == 1
