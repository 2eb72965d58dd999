"""Execution quality on a running node: the arrival price the OMS records, the figures it
reports (metrics, its query, the facade, the status books) and their survival of a restart."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from tradenode import ExecutionEngine, Node, parse_config
from tradenode.actors import ExecutionQuality, GetExecutionQuality, GetMetrics
from tradenode.brokers.paper import PaperVenue
from tradenode.messages import (
    DecisionAction,
    ExecutionDecision,
    OrderFilled,
    OrderStatus,
    OrderType,
    ParentFilled,
    Side,
    TwapParams,
    child_order_id,
)
from tradenode.supervision import ManualClock

from ._node_helpers import BASE_CONFIG, Harness

D = Decimal
SECOND = 1_000_000_000


@contextmanager
def node_on(
    extra_yaml: str = "", clock: ManualClock | None = None, *, base: str = BASE_CONFIG
) -> Iterator[Harness]:
    clock = clock or ManualClock()
    node = Node(parse_config(base + extra_yaml), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=10)


def paper(h: Harness) -> PaperVenue:
    venue = h.node.venues["paper"]
    assert isinstance(venue, PaperVenue)
    return venue


def quality(h: Harness, client_order_id: str) -> ExecutionQuality:
    found = h.node.oms.ask(GetExecutionQuality(client_order_id))
    assert isinstance(found, ExecutionQuality), found
    return found


def at_50000(h: Harness) -> None:
    """Paper's BTCUSDT at 50000.00 with its 2 bps spread: bid 49995.00, ask 50005.00, mid
    50000.00; the OMS holds that quote before any order is registered."""
    paper(h).set_price("BTCUSDT", D("50000"))
    h.sync()
    quote = paper(h).quote("BTCUSDT")
    assert (quote.bid, quote.ask) == (D("49995.00"), D("50005.00"))


def test_a_market_buy_is_measured_against_the_mid_the_oms_held_when_it_registered_it() -> None:
    """BUY 0.2 at market fills at the ask, 50005.00, taker fee 10 bps in USDT:
    0.2 x 50005 x 0.001 = 10.001. Arrival 50000.00 (mid). Slippage (50005 - 50000) / 50000 x
    10000 = +1 bps; shortfall 0.2 x 5 + 10.001 = 11.001 USDT; fill ratio 1; no time passes.
    """
    with node_on() as h:
        at_50000(h)
        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.2")))
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        fills = paper(h).fills("BTCUSDT")
        assert [(f.price, f.commission) for f in fills] == [(D("50005.00"), D("10.001"))]
        figures = quality(h, coid)
        assert figures.arrival_price == D("50000.00")
        assert figures.average_price == D("50005.00")
        assert figures.slippage_bps == D("1")
        assert figures.implementation_shortfall == D("11.001")
        assert figures.fill_ratio == 1
        assert (figures.time_to_first_fill_ns, figures.time_to_complete_ns) == (0, 0)
        metrics = h.node.oms.ask(GetMetrics())
        assert metrics["execution_orders"] == 1
        assert metrics["execution_slippage_bps"] == D("1")
        assert metrics["execution_shortfall"] == D("11.001")


def test_a_resting_limit_is_timed_on_the_node_clock_and_survives_a_restart(tmp_path: Path) -> None:
    """BUY 0.1 limit 49990.00 rests (ask 50005.00). Two seconds later the price drops to
    49980.00 and the order fills at its limit as a maker, fee 2 bps: 0.1 x 49990 x 0.0002 =
    0.9998 USDT. Arrival 50000.00: slippage (49990 - 50000) / 50000 x 10000 = -2 bps (bought
    below arrival); shortfall 0.1 x (-10) + 0.9998 = -0.0002; first fill and completion both
    2 s after arrival. A new process on the same journal reports the same figures.
    """
    journal = f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record}}\n"
    clock = ManualClock()
    with node_on(journal, clock) as h:
        at_50000(h)
        coid = h.do(
            lambda ctx: ctx.submit_order(
                "BTCUSDT", Side.BUY, D("0.1"), order_type=OrderType.LIMIT, price=D("49990.00")
            )
        )
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.sync()
        clock.advance(2)
        paper(h).set_price("BTCUSDT", D("49980"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        fill = h.wait_for(OrderFilled, coid)[0]
        assert (fill.last_price, fill.commission) == (D("49990.00"), D("0.9998"))
        before = quality(h, coid)
        assert before.arrival_price == D("50000.00")
        assert before.slippage_bps == D("-2")
        assert before.implementation_shortfall == D("-0.0002")
        assert before.time_to_first_fill_ns == 2 * SECOND
        assert before.time_to_complete_ns == 2 * SECOND
        status = h.node.status()
        assert D(status["execution_quality"]["orders"][coid]["slippage_bps"]) == D("-2")
    with node_on(journal, clock) as again:
        assert quality(again, coid) == before
        assert again.node.status()["execution_quality"]["totals"]["measured"] == 1


def test_the_facade_reports_execution_quality_in_its_performance_metrics() -> None:
    """A LONG 0.2 decision through ExecutionEngine: a market buy at 50005.00, arrival 50000.00."""
    clock = ManualClock()
    engine = ExecutionEngine(parse_config(BASE_CONFIG), clock=clock)
    engine.connect()
    try:
        node = engine.node
        assert node is not None
        venue = node.venues["paper"]
        assert isinstance(venue, PaperVenue)
        venue.set_price("BTCUSDT", D("50000"))
        node.system.wait_quiescent(30)
        coid = engine.execute_decision(
            ExecutionDecision(
                strategy_id="facade",
                symbol="BTCUSDT",
                action=DecisionAction.LONG,
                size=D("0.2"),
            )
        )
        assert coid is not None
        node.system.wait_quiescent(30)
        metrics = engine.get_performance_metrics()
        assert metrics["execution_orders"] == 1
        order = metrics["execution_quality"]["orders"][coid]
        figures = (order["arrival_price"], order["average_price"], order["slippage_bps"])
        assert tuple(map(D, figures)) == (D("50000"), D("50005"), D("1"))
        assert D(metrics["execution_quality"]["totals"]["implementation_shortfall"]) == D("11.001")
    finally:
        engine.disconnect()


QUIET_CONFIG = BASE_CONFIG.replace("tick_interval_ms: 1000", "tick_interval_ms: 3600000")
"""The helpers' two paper venues, ticking once an hour: only the test moves their prices."""
assert QUIET_CONFIG != BASE_CONFIG


def test_a_twap_parent_is_measured_against_its_own_arrival_over_all_its_children() -> None:
    """TWAP BUY 0.4 in 2 slices over 10 s (slices at 0 and 5 s) on a paper venue whose market
    does not tick by itself. The parent is accepted at 50000.00 (mid; its arrival): slice 1,
    0.2 at the ask 50005.00 (fee 0.2 x 50005 x 0.001 = 10.001). The price is set to 50100.00
    before slice 2: 0.2 at its ask 50105.01 (fee 0.2 x 50105.01 x 0.001 = 10.021002).
    Notional 10001.000 + 10021.002 = 20022.002; average 20022.002 / 0.4 = 50055.005;
    slippage 55.005 / 50000 x 10000 = 11.001 bps; shortfall 0.4 x 55.005 + 10.001 +
    10.021002 = 42.024002; first fill at the accept, complete 5 s later with slice 2. Each
    child keeps its own arrival (slice 2: 50100.00).
    """
    with node_on(base=QUIET_CONFIG) as h:
        at_50000(h)
        h.strategy("s1")
        h.sync()
        pid = h.do(
            lambda ctx: ctx.submit_parent(
                "BTCUSDT", Side.BUY, D("0.4"), TwapParams(duration=10.0, slices=2), venue="paper"
            )
        )
        h.sync()
        h.clock.advance(4.999)
        h.sync()
        paper(h).set_price("BTCUSDT", D("50100"))
        h.sync()
        h.clock.advance(0.001)
        h.sync()
        h.events().wait_for(lambda m: isinstance(m, ParentFilled) and m.parent_id == pid)
        h.sync()
        report = h.node.oms.ask(GetExecutionQuality())
        figures = report["parents"][pid]
        assert D(figures["arrival_price"]) == D("50000.00")
        assert D(figures["average_price"]) == D("50055.005")
        assert D(figures["slippage_bps"]) == D("11.001")
        assert D(figures["implementation_shortfall"]) == D("42.024002")
        assert figures["fill_count"] == 2 and D(figures["fill_ratio"]) == 1
        assert figures["time_to_first_fill_ns"] == 0
        assert figures["time_to_complete_ns"] == 5 * SECOND
        second = quality(h, child_order_id(pid, 2))
        assert second.arrival_price == D("50100.00") and second.slippage_bps is not None
