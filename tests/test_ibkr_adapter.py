"""The IB adapter through a running node, against the local TWS (``IbkrVenue``) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode import Node, parse_config
from tradenode.brokers.ibkr import IbkrLink
from tradenode.messages import (
    OrderCanceled,
    OrderModified,
    OrderRejected,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import IbkrVenue

from ._ibkr_helpers import (
    LOCAL_SYMBOLS,
    IbkrHarness,
    assert_exactly_once,
    ibkr_node,
    limit,
    market,
    venue_clock,
)
from ._node_helpers import Scripted

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[IbkrVenue]:
    with IbkrVenue(seed=7, clock=venue_clock(clock)) as local_venue:
        yield local_venue


@pytest.fixture
def h(venue: IbkrVenue, clock: ManualClock) -> Iterator[IbkrHarness]:
    with ibkr_node(venue, clock=clock) as harness:
        yield harness


def test_a_stock_market_order_fills_with_its_commission(h: IbkrHarness) -> None:
    coid = h.do(market(Side.BUY, "150"))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == 150 and view.venue_order_id is not None
    fills = h.fills()
    assert len(fills) == 2  # two book levels, two executions
    assert all(f.commission > 0 for f in fills)
    assert_exactly_once(h)


def test_a_resting_limit_rests_then_fills(h: IbkrHarness) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "50"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("AAPL", D("188.90"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 50
    assert_exactly_once(h)


@pytest.mark.parametrize(
    ("symbol", "quantity", "limit_price", "fill_at"),
    [
        ("EURUSD", "20000", "1.07900", "1.07850"),
        ("ESZ6", "2", "4990.00", "4989.75"),
        ("AAPL-C200", "3", "4.90", "4.85"),
    ],
)
def test_fx_future_and_option_lifecycles(
    h: IbkrHarness, symbol: str, quantity: str, limit_price: str, fill_at: str
) -> None:
    bought = h.do(market(Side.BUY, quantity, symbol))
    assert h.wait_status(bought, OrderStatus.FILLED).filled_quantity == D(quantity)
    resting = h.do(limit(Side.BUY, limit_price, quantity, symbol))
    h.wait_status(resting, OrderStatus.ACCEPTED)
    h.venue.set_price(LOCAL_SYMBOLS[symbol], D(fill_at))
    h.wait_status(resting, OrderStatus.FILLED)
    sold = h.do(market(Side.SELL, quantity, symbol, time_in_force=TimeInForce.IOC))
    h.wait_status(sold, OrderStatus.FILLED)
    assert h.position(symbol) == D(quantity) == h.venue_position(symbol)
    placed = {o["orderRef"]: o for o in h.venue.orders()}
    assert placed[resting]["orderType"] == "LMT" and placed[sold]["tif"] == "IOC"
    assert_exactly_once(h)


@pytest.mark.parametrize(
    ("kind", "fields", "path"),
    [
        (OrderType.STOP, {"stop_price": D("192.00")}, ("192.50",)),
        (OrderType.STOP_LIMIT, {"stop_price": D("192.00"), "price": D("193.00")}, ("192.10",)),
        (OrderType.TRAILING_STOP, {"trailing_offset": D("1.00")}, ("188.00", "189.50")),
    ],
)
def test_triggered_orders_wait_for_their_trigger(
    h: IbkrHarness, kind: OrderType, fields: dict[str, Any], path: tuple[str, ...]
) -> None:
    coid = h.do(
        lambda ctx: ctx.submit_order(
            "AAPL", Side.BUY, D(10), order_type=kind, venue="ibkr", **fields
        )
    )
    h.wait_status(coid, OrderStatus.ACCEPTED)
    for price in path:
        h.venue.set_price("AAPL", D(price))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 10
    assert_exactly_once(h)


def test_a_large_limit_fills_partially_level_by_level(h: IbkrHarness) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "250"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("AAPL", D("188.95"))
    assert h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity < 250
    h.venue.set_price("AAPL", D("188.90"))
    h.venue.set_price("AAPL", D("188.85"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 250
    assert len(h.fills()) >= 2
    assert_exactly_once(h)


def test_modify_is_native_under_the_same_order_id(h: IbkrHarness) -> None:
    coid = h.do(limit(Side.BUY, "185.00", "100"))
    first = h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.modify_order(coid, quantity=D(60), price=D("186.00")))
    modified = h.wait_for(OrderModified, coid)[0]
    assert modified.quantity == 60 and modified.price == D("186.00")
    h.sync()
    view = h.order(coid)
    assert view.venue_order_id == first.venue_order_id
    held = next(o for o in h.venue.orders() if o["orderRef"] == coid)
    assert D(str(held["totalQuantity"])) == 60 and D(str(held["lmtPrice"])) == D("186.00")
    h.venue.set_price("AAPL", D("185.90"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 60
    assert h.venue.submissions()[coid] == 2  # the placement and its modification
    assert_exactly_once(h)


def test_cancel(h: IbkrHarness) -> None:
    coid = h.do(limit(Side.BUY, "180.00", "100"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    h.sync()
    assert len([m for m in h.events().items if isinstance(m, OrderCanceled)]) == 1
    assert next(o for o in h.venue.orders() if o["orderRef"] == coid)["status"] == "Cancelled"


def test_the_kill_switch_cancels_everything_and_flattens(h: IbkrHarness) -> None:
    bought = h.do(market(Side.BUY, "100"))
    h.wait_status(bought, OrderStatus.FILLED)
    fx = h.do(market(Side.SELL, "20000", "EURUSD"))
    h.wait_status(fx, OrderStatus.FILLED)
    resting = [
        h.do(limit(Side.BUY, "180.00", "10")),
        h.do(limit(Side.BUY, "1.07000", "20000", "EURUSD")),
    ]
    for coid in resting:
        h.wait_status(coid, OrderStatus.ACCEPTED)
    report = h.node.kill_switch(flatten=True)
    assert report.complete, report.problems
    for coid in resting:
        assert h.order(coid).status is OrderStatus.CANCELED
    assert h.venue.positions() == {}
    assert h.position("AAPL") == 0 and h.position("EURUSD") == 0
    assert_exactly_once(h)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED"),
        (103, "Duplicate order id"),
    ],
)
def test_a_venue_rejection_carries_ibs_code_and_text_never_the_account(
    h: IbkrHarness, code: int, text: str
) -> None:
    account = h.venue.account
    h.venue.refuse_next_order(code, f"{text} (account {account})")
    coid = h.do(market(Side.BUY, "10"))
    view = h.wait_status(coid, OrderStatus.REJECTED)
    rejected = h.wait_for(OrderRejected, coid)[0]
    assert rejected.code == view.rejection_code == str(code)
    assert text.split(" (", maxsplit=1)[0][:20] in rejected.reason
    assert account not in rejected.reason
    h.sync()
    assert len([m for m in h.events().items if isinstance(m, OrderRejected)]) == 1


class Watcher(Scripted):
    venue = "ibkr"


def test_quotes_stream_from_market_data_ticks(h: IbkrHarness) -> None:
    seen = EventRecorder()
    h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=("AAPL",)))
    h.sync()
    h.venue.set_price("AAPL", D("191.00"))
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and m.symbol == "AAPL" and m.bid == D("191.00")
    )[0]
    assert quote.venue == "ibkr" and quote.ask >= quote.bid


def test_a_corrected_execution_is_the_same_fill_to_the_oms(h: IbkrHarness) -> None:
    coid = h.do(market(Side.BUY, "10"))
    h.wait_status(coid, OrderStatus.FILLED)
    (original,) = [f for f in h.venue.fills() if f["orderRef"] == coid]
    corrected = h.venue.correct_execution(str(original["execId"]))
    assert corrected != original["execId"]
    assert corrected.rsplit(".", 1)[0] == str(original["execId"]).rsplit(".", 1)[0]
    link = h.link()
    # The correction arrives live; it is seen, logged, and never a second fill.
    later = h.do(market(Side.BUY, "5"))
    h.wait_status(later, OrderStatus.FILLED)
    h.sync()
    assert link.corrections == 1
    assert [f.execution_id for f in h.fills()].count(corrected.rsplit(".", 1)[0]) == 1
    assert_exactly_once(h)


def test_the_paper_config_rehearses_against_the_local_tws(
    venue: IbkrVenue, clock: ManualClock
) -> None:
    text = (Path(__file__).resolve().parent.parent / "config" / "ibkr-paper.yaml").read_text()
    environ = {"IB_PORT": str(venue.port), "IB_ACCOUNT": venue.account, "IB_CLIENT_ID": "3"}
    node = Node(parse_config(text, environ=environ), clock=clock)
    node.start()
    try:
        link = node.venues["ibkr"]
        assert isinstance(link, IbkrLink)
        assert link.wait_for_reconciliations(1, timeout=10)
        assert set(link.positions) == {"AAPL", "MSFT", "EURUSD", "ESZ6", "AAPL-C200"}
        assert node.status()["connections"]["ibkr"]["connections"] == 1
    finally:
        node.stop(timeout=20)
