"""Iceberg: one child showing at a time, never more than the display quantity,
refreshed on fill, seeded price offsets, and parameter checks that deny."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradenode import Node, parse_config
from tradenode.actors import ParentView
from tradenode.brokers import VenueConfig
from tradenode.brokers.paper import PaperVenue
from tradenode.execution import (
    ChildIntent,
    Decision,
    IcebergAlgorithm,
    IcebergChild,
    IcebergPolicy,
    register_algorithm,
)
from tradenode.messages import (
    DenialCode,
    IcebergParams,
    OrderStatus,
    ParentState,
    Side,
    SubmitOrder,
    child_order_id,
)

# The parameter checks behind AlgoParams.problems(), tested one by one.
from tradenode.messages._algos import ParamProblem, check_iceberg
from tradenode.sim import paper_sim_config
from tradenode.supervision import EventRecorder, ManualClock, SupervisionEventKind

from ._execution_helpers import (
    ParentDenied,
    ParentFilled,
    advance,
    children,
    parent,
    parent_events,
    submit_parent,
    wait_parent_event,
)
from ._node_helpers import BASE_CONFIG, Harness, running_node

D = Decimal


def _policy(side: Side = Side.BUY, **overrides: object) -> IcebergPolicy:
    params: dict[str, object] = {
        "parent_id": "ice-1",
        "side": side,
        "quantity": D("2.5"),
        "display_quantity": D("0.7"),
        "limit_price": D("100.00"),
    }
    params.update(overrides)
    return IcebergPolicy(**params)  # type: ignore[arg-type]


def test_shows_the_display_quantity_then_refreshes_on_fill() -> None:
    policy = _policy()
    first = policy.next_child(filled=D(0), showing=D(0), refreshes=0)
    assert first == IcebergChild(refresh=0, quantity=D("0.7"), price=D("100.00"))
    # while anything shows (sent, or partly filled), nothing else goes out
    assert policy.next_child(filled=D(0), showing=D("0.7"), refreshes=1) is None
    assert policy.next_child(filled=D("0.3"), showing=D("0.4"), refreshes=1) is None
    second = policy.next_child(filled=D("0.7"), showing=D(0), refreshes=1)
    assert second == IcebergChild(refresh=1, quantity=D("0.7"), price=D("100.00"))
    # the last slice is only what is left
    last = policy.next_child(filled=D("2.1"), showing=D(0), refreshes=3)
    assert last is not None and last.quantity == D("0.4")
    assert policy.next_child(filled=D("2.5"), showing=D(0), refreshes=4) is None


def test_a_child_that_ended_unfilled_is_refreshed_with_the_rest() -> None:
    policy = _policy()
    # child 0 was cancelled by the venue after filling 0.2: 2.3 left, 0.7 shown again
    child = policy.next_child(filled=D("0.2"), showing=D(0), refreshes=1)
    assert child is not None and child.quantity == D("0.7")


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_price_offsets_are_passive_seeded_and_in_ticks(side: Side) -> None:
    policy = _policy(side, price_offset=D("0.05"), tick_size=D("0.01"))
    prices = [policy.price_for(refresh) for refresh in range(200)]
    for price in prices:
        distance = (policy.limit_price - price) * side.sign
        assert D(0) <= distance <= D("0.05")  # never worse than the limit
        assert price % D("0.01") == 0
    assert len(set(prices)) > 1  # it does vary
    again = _policy(side, price_offset=D("0.05"), tick_size=D("0.01"))
    assert [again.price_for(refresh) for refresh in range(200)] == prices
    other = _policy(side, parent_id="ice-2", price_offset=D("0.05"), tick_size=D("0.01"))
    assert [other.price_for(refresh) for refresh in range(200)] != prices


def test_without_an_offset_every_refresh_is_at_the_limit() -> None:
    policy = _policy()
    assert {policy.price_for(refresh) for refresh in range(20)} == {D("100.00")}


@given(
    display=st.integers(1, 40),
    total=st.integers(1, 200),
    fills=st.lists(st.integers(0, 100), min_size=1, max_size=80),
)
def test_never_shows_more_than_the_display_nor_overfills(
    display: int, total: int, fills: list[int]
) -> None:
    """Drive the policy with arbitrary partial fills (percent of what shows): what
    shows never exceeds the display quantity, fills never exceed the total."""
    lot = D("0.1")
    display_quantity = min(D(display) * lot, D(total) * lot)
    policy = _policy(quantity=D(total) * lot, display_quantity=display_quantity)
    filled, showing, refreshes = D(0), D(0), 0
    for percent in fills:
        child = policy.next_child(filled=filled, showing=showing, refreshes=refreshes)
        if child is not None:
            assert showing == 0
            showing, refreshes = child.quantity, refreshes + 1
        assert showing <= display_quantity
        done = min(showing, (showing * percent / 100 // lot) * lot)
        filled, showing = filled + done, showing - done
        assert filled + showing <= policy.quantity


# -- parameters ----------------------------------------------------------------------


def _check(**overrides: object) -> ParamProblem | None:
    params: dict[str, object] = {
        "quantity": D(10),
        "display_quantity": D(1),
        "limit_price": D("100.00"),
    }
    params.update(overrides)
    return check_iceberg(**params)  # type: ignore[arg-type]


def test_good_parameters_pass() -> None:
    assert _check() is None
    assert _check(display_quantity=D(10), price_offset=D("0.5"), lot=D("0.5")) is None


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"display_quantity": D(11)}, "DISPLAY_ABOVE_TOTAL"),
        ({"display_quantity": D(0)}, "INVALID_PARAMETER"),
        ({"display_quantity": D(-1)}, "INVALID_PARAMETER"),
        ({"display_quantity": 1.0}, "INVALID_PARAMETER"),
        ({"limit_price": None}, "INVALID_PARAMETER"),
        ({"price_offset": D(-1)}, "INVALID_PARAMETER"),
        ({"price_offset": D(100)}, "INVALID_PARAMETER"),
        ({"display_quantity": D("0.3"), "lot": D("0.5")}, "INVALID_PARAMETER"),
        ({"limit_price": D("100.005"), "tick_size": D("0.01")}, "INVALID_PARAMETER"),
    ],
)
def test_bad_parameters_are_problems_with_a_code(overrides: dict[str, object], code: str) -> None:
    problem = _check(**overrides)
    assert isinstance(problem, ParamProblem)
    assert problem.code == code
    assert problem.reason


def test_the_public_params_deny_with_a_code_and_a_reason() -> None:
    params = IcebergParams(display_quantity=D(5), limit_price=D("100.00"))
    assert params.problems(D(10)) is None
    assert params.problems(D(3)) == (
        "DISPLAY_ABOVE_TOTAL: IcebergParams.display_quantity=5 is above the parent's quantity 3"
    )
    assert params.worst_price == D("100.00")
    assert params.name == "ICEBERG"
    with pytest.raises(
        ValueError, match=r"IcebergParams\.display_quantity=1\.0: must be a decimal"
    ):
        IcebergParams(display_quantity=1.0, limit_price=D(1))  # type: ignore[arg-type]


# -- on a running node -------------------------------------------------------------------


class ShowingPaperVenue(PaperVenue):
    """A paper venue that, after every change it publishes (a placement, a fill, a
    price move), records how much of one parent's children rests in its own book."""

    def __init__(self, clock: ManualClock, prefix: str) -> None:
        super().__init__("ice", paper_sim_config(), seed=3, clock=clock)
        self.prefix = prefix
        self.showing: list[Decimal] = []

    def _publish(self, events: Sequence[object]) -> None:
        self.showing.append(
            sum(
                (
                    order.remaining_quantity
                    for order in self.open_orders()
                    if order.client_order_id.startswith(self.prefix)
                ),
                D(0),
            )
        )
        super()._publish(events)


def _iceberg_node(h: Harness, parent_id: str) -> ShowingPaperVenue:
    venue = ShowingPaperVenue(h.clock, f"{parent_id}-")
    # No market tick during a test (one a day): the test moves the price itself.
    h.node.add_venue(VenueConfig(name="ice", paper={"tick_interval_ms": 86_400_000}), venue=venue)
    h.strategy("s1")
    h.sync()
    return venue


def test_an_iceberg_never_shows_more_than_its_display_at_the_venue() -> None:
    with running_node() as h:
        venue = _iceberg_node(h, "ice1")
        params = IcebergParams(display_quantity=D("0.3"), limit_price=D("49990.00"))
        pid = submit_parent(h, D("1.0"), params, venue="ice", parent_id="ice1")
        for refresh in range(1, 5):
            # One child rests, at the limit, and it is the only thing of the parent showing.
            (resting,) = venue.open_orders()
            assert resting.client_order_id == child_order_id(pid, refresh)
            assert resting.remaining_quantity == (D("0.3") if refresh < 4 else D("0.1"))
            assert resting.price == D("49990.00")
            # The market trades through the limit and comes back: the child fills, the
            # next refresh goes out (and rests) only once the venue has reported it.
            venue.set_price("BTCUSDT", D("49900.00"))
            venue.set_price("BTCUSDT", D("50100.00"))
            h.sync()
        wait_parent_event(h, pid, ParentFilled)
        assert venue.open_orders() == []
        sent = children(h, pid)
        assert [c.quantity for c in sent] == [D("0.3"), D("0.3"), D("0.3"), D("0.1")]
        assert all(c.status is OrderStatus.FILLED for c in sent)
        assert parent(h, pid).filled == D("1.0")
        # The venue's own book, checked at every change it made: never above the display.
        assert venue.showing and max(venue.showing) == D("0.3")
        assert venue.position("BTCUSDT") == D("1.0")


def test_a_partly_filled_child_is_not_refreshed_until_it_fills() -> None:
    """The synthetic book fills 0.5 per crossing at most: a 0.8 display fills in two
    steps, and nothing else goes out in between."""
    with running_node() as h:
        venue = _iceberg_node(h, "ice2")
        params = IcebergParams(display_quantity=D("0.8"), limit_price=D("49990.00"))
        pid = submit_parent(h, D("1.2"), params, venue="ice", parent_id="ice2")
        venue.set_price("BTCUSDT", D("49900.00"))
        venue.set_price("BTCUSDT", D("50100.00"))
        h.sync()
        (resting,) = venue.open_orders()
        assert resting.client_order_id == child_order_id(pid, 1)
        assert D(0) < resting.remaining_quantity < D("0.8")
        assert len(parent(h, pid).child_ids) == 1
        while parent(h, pid).filled < D("1.2"):
            venue.set_price("BTCUSDT", D("49900.00"))
            venue.set_price("BTCUSDT", D("50100.00"))
            h.sync()
        assert max(venue.showing) <= D("0.8")
        assert sum(c.filled_quantity for c in children(h, pid)) == D("1.2")
        assert venue.position("BTCUSDT") == D("1.2")


def test_refreshes_draw_their_price_within_the_offset() -> None:
    with running_node() as h:
        venue = _iceberg_node(h, "ice3")
        params = IcebergParams(
            display_quantity=D("0.2"), limit_price=D("49990.00"), price_offset=D("5.00")
        )
        pid = submit_parent(h, D("1.0"), params, venue="ice", parent_id="ice3")
        while parent(h, pid).filled < D("1.0"):
            venue.set_price("BTCUSDT", D("49900.00"))
            venue.set_price("BTCUSDT", D("50100.00"))
            h.sync()
        prices = [c.order.price for c in children(h, pid)]
        assert len(prices) == 5
        assert all(p is not None and D("49985.00") <= p <= D("49990.00") for p in prices)
        assert max(venue.showing) <= D("0.2")


def test_an_invalid_iceberg_is_denied_with_a_code_and_a_reason() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        params = IcebergParams(display_quantity=D("5"), limit_price=D("49990.00"))
        pid = submit_parent(h, D("1"), params)
        denied = wait_parent_event(h, pid, ParentDenied)
        assert denied.code is DenialCode.INVALID_ORDER
        assert denied.reason.startswith("DISPLAY_ABOVE_TOTAL: ")
        assert parent_events(h, pid) == [denied]
        assert h.open_orders() == ()


# -- restarts ------------------------------------------------------------------------------


class _FailsAfterRefresh2(IcebergAlgorithm):
    """Raises right after telling the router (where children go) its second child, once."""

    failed: ClassVar[list[int]] = []

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        decision = super().decide(view, now_ns)
        sent = [c.client_order_id for c in decision.children]
        if not self.failed and any(cid.endswith("-2") for cid in sent):
            self.failed.append(self.context.generation)
            # Hand the child over first, as a crash between telling and recording would.
            self.env.directory.router().tell(_child_order(view, decision.children[0]))
            raise RuntimeError("algorithm bug right after sending refresh 2")
        return decision


def _child_order(view: ParentView, child: ChildIntent) -> SubmitOrder:
    order = view.order
    assert order.venue is not None
    return SubmitOrder(
        client_order_id=child.client_order_id,
        strategy_id=order.strategy_id,
        venue=order.venue,
        symbol=order.symbol,
        side=order.side,
        order_type=child.order_type,
        quantity=child.quantity,
        price=child.price,
        parent_id=view.parent_id,
    )


@pytest.fixture
def failing_iceberg() -> Iterator[list[int]]:
    _FailsAfterRefresh2.failed.clear()
    register_algorithm(IcebergParams, _FailsAfterRefresh2)
    try:
        yield _FailsAfterRefresh2.failed
    finally:
        register_algorithm(IcebergParams, IcebergAlgorithm)


def test_an_iceberg_that_raises_is_restarted_and_never_shows_twice(
    failing_iceberg: list[int],
) -> None:
    with running_node() as h:
        events = EventRecorder()
        h.node.system.events.subscribe(events)
        venue = _iceberg_node(h, "ice4")
        params = IcebergParams(display_quantity=D("0.3"), limit_price=D("49990.00"))
        pid = submit_parent(h, D("0.9"), params, venue="ice", parent_id="ice4")
        algo = h.node.directory.path("execution", "algos", pid)
        venue.set_price("BTCUSDT", D("49900.00"))
        venue.set_price("BTCUSDT", D("50100.00"))
        h.sync()
        assert failing_iceberg == [1]
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.FAILED)
        advance(h, 0.5)  # the restart backoff, on the node's clock
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.RESTARTED)
        h.sync()
        # The new incarnation found refresh 2 resting and sent nothing more.
        assert parent(h, pid).child_ids == (child_order_id(pid, 1), child_order_id(pid, 2))
        (resting,) = venue.open_orders()
        assert resting.client_order_id == child_order_id(pid, 2)
        venue.set_price("BTCUSDT", D("49900.00"))
        venue.set_price("BTCUSDT", D("50100.00"))
        h.sync()
        venue.set_price("BTCUSDT", D("49900.00"))
        h.sync()
        wait_parent_event(h, pid, ParentFilled)
        assert parent(h, pid).child_ids == tuple(child_order_id(pid, k) for k in (1, 2, 3))
        assert max(venue.showing) == D("0.3")
        assert venue.position("BTCUSDT") == D("0.9")


JOURNALED = """
journal: {{path: '{path}', fsync: every_record}}
"""


def _journaled_node(tmp_path: Path, clock: ManualClock, venues: dict[str, object]) -> Harness:
    node = Node(
        parse_config(BASE_CONFIG + JOURNALED.format(path=tmp_path / "journal")), clock=clock
    )
    # The paper venues outlive the node, as a real venue would: the new node re-attaches them.
    node.venues.update(venues)
    node.start()
    return Harness(node, clock)


def test_a_node_restarted_on_its_journal_finds_the_resting_child_and_shows_no_more(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    h = _journaled_node(tmp_path, clock, {})
    try:
        h.strategy("s1")
        h.sync()
        # Far below the market: the child rests through the random walk.
        params = IcebergParams(display_quantity=D("0.2"), limit_price=D("40000.00"))
        pid = submit_parent(h, D("0.5"), params, parent_id="ice5")
        venue = h.node.venues["paper"]
        assert isinstance(venue, PaperVenue)
        assert [o.client_order_id for o in venue.open_orders()] == [child_order_id(pid, 1)]
    finally:
        h.node.stop(timeout=10)
    clock.advance(30.0)
    h = _journaled_node(tmp_path, clock, dict(h.node.venues))
    try:
        h.strategy("s1")
        h.sync()
        advance(h, 5.0)
        view = parent(h, pid)
        assert view.state is ParentState.WORKING and view.child_ids == (child_order_id(pid, 1),)
        assert [o.client_order_id for o in venue.open_orders()] == [child_order_id(pid, 1)]
        for _ in range(3):
            venue.set_price("BTCUSDT", D("39000.00"))
            venue.set_price("BTCUSDT", D("50000.00"))
            h.sync()
            assert sum(o.remaining_quantity for o in venue.open_orders()) <= D("0.2")
        wait_parent_event(h, pid, ParentFilled)
        assert parent(h, pid).child_ids == tuple(child_order_id(pid, k) for k in (1, 2, 3))
        assert [c.quantity for c in children(h, pid)] == [D("0.2"), D("0.2"), D("0.1")]
        assert venue.position("BTCUSDT") == D("0.5")
    finally:
        h.node.stop(timeout=10)
