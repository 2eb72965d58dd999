"""Parent orders through a running node: risk before the first child, cancel, a failing
algorithm, bad parameters, and a restart on the journal (paper venues, manual clock)."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from tradenode import Node, parse_config

# The directory's instrument map is internal: the fake directory below carries one.
from tradenode._execution_config import InstrumentMap
from tradenode.actors import (
    ClientIdRules,
    EntryKind,
    JournalEntry,
    OmsState,
    SetTradingState,
    VenueCapabilities,
    VenueEntry,
    decode_entry,
    encode_entry,
    replay,
)

# The parent book, its error and the guard's parent check are internals, tested here
# as pure functions.
from tradenode.actors._oms_parents import parent_denial
from tradenode.actors._parents import ParentBook, ParentTransitionError
from tradenode.actors._risk import RiskBook
from tradenode.actors._risk_limits import RiskLimits
from tradenode.actors._risk_rules import RiskEngine
from tradenode.execution import MAX_FINAL_CHILDREN, Decision, TwapAlgorithm, register_algorithm
from tradenode.messages import (
    CancelParentOrder,
    DenialCode,
    OrderFilled,
    OrderStatus,
    OrderType,
    ParentCanceled,
    ParentDenied,
    ParentFilled,
    ParentState,
    Side,
    SubmitOrder,
    SubmitParentOrder,
    TradingState,
    TwapParams,
    child_number,
    child_order_id,
)
from tradenode.supervision import EventRecorder, ManualClock, SupervisionEventKind

from ._execution_helpers import (
    ParentAccepted,
    ParentView,
    advance,
    children,
    parent,
    parent_events,
    submit_parent,
    wait_parent_event,
    working,
)
from ._node_helpers import BASE_CONFIG, Harness, running_node

D = Decimal
TEN_SLICES = TwapParams(duration=100.0, slices=10)


def test_a_parent_is_tracked_and_each_child_linked_to_it() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("3"), TwapParams(duration=30.0, slices=3))
        assert isinstance(parent_events(h, pid)[0], ParentAccepted)
        advance(h, 10.0)
        view = parent(h, pid)
        assert view.state is ParentState.WORKING
        assert (view.target, view.filled, view.remaining) == (D(3), D(2), D(1))
        (shown,) = h.node.status()["parents"]["working"]
        assert shown["parent_id"] == pid and shown["algorithm"] == "TWAP"
        assert (shown["target"], shown["filled"], shown["children"]) == ("3", "2.0", 2)
        assert [c.order.parent_id for c in children(h, pid)] == [pid, pid]
        advance(h, 10.0)
        filled = wait_parent_event(h, pid, ParentFilled)
        assert filled.filled == D(3) and filled.avg_price == parent(h, pid).avg_price
        # The strategy heard every step, and its children's own events.
        progress = [e for e in parent_events(h, pid) if type(e).__name__ == "ParentProgress"]
        assert [p.filled for p in progress if p.open_quantity == 0][-1] == D(3)
        assert parent(h, pid).state is ParentState.FILLED


def test_cancelling_a_parent_cancels_its_open_children_and_stops_its_algorithm() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("4"), TwapParams(duration=40.0, slices=4, limit_price=D("1000")))
        first = children(h, pid)[0]
        assert first.status is OrderStatus.ACCEPTED
        algo = h.node.directory.path("execution", "algos", pid)
        assert h.node.system.lookup(algo) is not None
        h.node.cancel_parent(pid, reason="operator changed their mind")
        h.sync()
        canceled = wait_parent_event(h, pid, ParentCanceled)
        assert canceled.state is ParentState.CANCELED and canceled.filled == D(0)
        assert canceled.reason == "operator changed their mind"
        assert children(h, pid)[0].status is OrderStatus.CANCELED
        assert h.node.status()["parents"] == {"working": [], "finished": {"CANCELED": 1}}
        assert h.node.system.lookup(algo) is None
        advance(h, 60.0)
        assert parent(h, pid).child_ids == (first.client_order_id,)
        assert h.open_orders() == ()


def test_the_parents_total_is_risk_checked_before_any_child_is_sent() -> None:
    with running_node("risk: {max_order_quantity: 5}\n") as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("10"), TEN_SLICES)
        denied = wait_parent_event(h, pid, ParentDenied)
        assert denied.code is DenialCode.MAX_ORDER_QUANTITY
        assert "parent total" in denied.reason
        assert h.node.parent(pid) is None
        assert h.open_orders() == () and h.position("BTCUSDT") == 0
        # Within the limit, the same parent works, and each child passes the guard too.
        ok = submit_parent(h, D("5"), TwapParams(duration=50.0, slices=5))
        assert isinstance(parent_events(h, ok)[0], ParentAccepted)
        assert children(h, ok)[0].quantity == D(1)


@pytest.mark.parametrize(
    ("quantity", "params", "venue", "code", "words"),
    [
        (D("1"), TwapParams(duration=-5.0, slices=3), "paper", "INVALID_ORDER", "duration"),
        (D("1"), TwapParams(duration=0.0, slices=3), "paper", "INVALID_ORDER", "duration"),
        (D("1"), TwapParams(duration=60.0, slices=0), "paper", "INVALID_ORDER", "slices"),
        (D("0"), TEN_SLICES, "paper", "INVALID_ORDER", "quantity"),
        (D("-2"), TEN_SLICES, "paper", "INVALID_ORDER", "quantity"),
        (
            D("1"),
            TwapParams(duration=60.0, slices=3, size_jitter=1.5),
            "paper",
            "INVALID_ORDER",
            "size_jitter",
        ),
        (D("1"), TEN_SLICES, "nowhere", "VENUE_UNAVAILABLE", "nowhere"),
    ],
)
def test_invalid_parameters_are_denied_with_a_code_and_a_reason(
    quantity: Decimal, params: TwapParams, venue: str, code: str, words: str
) -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, quantity, params, venue=venue)
        denied = wait_parent_event(h, pid, ParentDenied)
        assert denied.code is DenialCode(code) and words in denied.reason
        assert h.node.parent(pid) is None
        assert not h.node.failed and h.node.system.dead_letters.count == 0
        # The node goes on: a valid parent right after is worked.
        ok = submit_parent(h, D("1"), TwapParams(duration=10.0, slices=1))
        wait_parent_event(h, ok, ParentFilled)


def test_a_venue_not_listed_for_the_instrument_is_denied_with_a_code() -> None:
    """``instruments:`` lists BTC-USD on paper as BTCUSDT only: a parent naming the
    instrument on paper2, or by its instrument name on paper, could place no child."""
    listing = "instruments:\n  BTC-USD: {venues: {paper: BTCUSDT}}\n"
    with running_node(listing) as h:
        h.strategy("s1")
        h.sync()
        for venue in ("paper2", "paper"):
            pid = submit_parent(h, D("1"), TEN_SLICES, symbol="BTC-USD", venue=venue)
            denied = wait_parent_event(h, pid, ParentDenied)
            assert denied.code is DenialCode.NO_ROUTE
            assert f"not listed on venue {venue}" in denied.reason and "paper as BTCUSDT" in (
                denied.reason
            )
            assert h.node.parent(pid) is None
        # Its venue's own symbol, or the router, works.
        ok = submit_parent(h, D("1"), TwapParams(duration=10.0, slices=1), venue="paper")
        wait_parent_event(h, ok, ParentFilled)
        assert not h.node.failed and h.node.system.dead_letters.count == 0


def test_a_parent_id_too_long_for_its_children_is_denied_not_raised() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("1"), TEN_SLICES, parent_id="x" * 30)
        assert wait_parent_event(h, pid, ParentDenied).code is DenialCode.INVALID_ORDER


def test_a_reused_parent_id_is_denied() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        submit_parent(h, D("1"), TwapParams(duration=10.0, slices=1), parent_id="dup-1")
        wait_parent_event(h, "dup-1", ParentFilled)
        submit_parent(h, D("1"), TwapParams(duration=10.0, slices=1), parent_id="dup-1")
        denied = wait_parent_event(h, "dup-1", ParentDenied)
        assert denied.code is DenialCode.DUPLICATE_ORDER
        assert parent(h, "dup-1").filled == D(1)


class _FailsAfterSlice4(TwapAlgorithm):
    """Raises right after telling the risk guard its fourth child, once: the next
    incarnation must find that child (never send it again) and go on."""

    failed: ClassVar[list[int]] = []

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        self._decision = super().decide(view, now_ns)
        return self._decision

    def step(self) -> None:
        self._decision = Decision()
        super().step()
        ids = [c.client_order_id for c in self._decision.children]
        if not self.failed and any(i.endswith("-4") for i in ids):
            self.failed.append(self.context.generation)
            raise RuntimeError("algorithm bug right after sending slice 4")


@pytest.fixture
def failing_twap() -> Iterator[list[int]]:
    _FailsAfterSlice4.failed.clear()
    register_algorithm(TwapParams, _FailsAfterSlice4)
    try:
        yield _FailsAfterSlice4.failed
    finally:
        register_algorithm(TwapParams, TwapAlgorithm)


def test_an_algorithm_that_raises_is_restarted_and_resumes_without_doubling(
    failing_twap: list[int],
) -> None:
    with running_node() as h:
        events = EventRecorder()
        h.node.system.events.subscribe(events)
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("10"), TEN_SLICES)
        algo = h.node.directory.path("execution", "algos", pid)
        for _ in range(3):
            advance(h, 10.0)
        assert failing_twap == [1]
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.FAILED)
        advance(h, 0.5)  # the restart backoff, on the node's clock
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.RESTARTED)
        h.sync()
        assert parent(h, pid).child_ids == tuple(child_order_id(pid, k) for k in range(1, 5))
        for _ in range(6):
            advance(h, 10.0)
        wait_parent_event(h, pid, ParentFilled)
        view = parent(h, pid)
        assert view.child_ids == tuple(child_order_id(pid, k) for k in range(1, 11))
        assert view.filled == D(10) and h.position("BTCUSDT") == D(10)
        denied = [e for e in h.events().items if type(e).__name__ == "OrderDenied"]
        assert denied == []


JOURNALED = """
journal: {{path: '{path}', fsync: every_record}}
"""


def _node(tmp_path: Path, clock: ManualClock, venues: dict[str, object] | None = None) -> Harness:
    node = Node(
        parse_config(BASE_CONFIG + JOURNALED.format(path=tmp_path / "journal")), clock=clock
    )
    # The embedded paper venues outlive the process here, as a real venue would: the
    # new node re-attaches them (their books, trade ids and all).
    node.venues.update(venues or {})
    node.start()
    return Harness(node, clock)


def test_a_node_restarted_on_its_journal_resumes_the_parent_from_the_next_slice(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    h = _node(tmp_path, clock)
    try:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("10"), TEN_SLICES)
        for _ in range(3):
            advance(h, 10.0)
        assert len(parent(h, pid).child_ids) == 4
    finally:
        h.node.stop(timeout=10)
    clock.advance(25.0)  # down past slices 5 and 6
    h = _node(tmp_path, clock, venues=dict(h.node.venues))
    try:
        h.sync()
        view = parent(h, pid)
        # Resumed from the journal: slices 1-4 known, never sent again; the two
        # slices due while it was down go out at once, each under its own number.
        assert view.state is ParentState.WORKING and view.filled == D(6)
        assert view.child_ids == tuple(child_order_id(pid, k) for k in range(1, 7))
        assert [c.quantity for c in children(h, pid)] == [D(1)] * 6
        advance(h, 5.0)  # slice 7's time
        assert len(parent(h, pid).child_ids) == 7
        for _ in range(3):
            advance(h, 10.0)
        view = parent(h, pid)
        assert view.state is ParentState.FILLED and view.filled == D(10) == view.target
        assert view.child_ids == tuple(child_order_id(pid, k) for k in range(1, 11))
        assert working(view) == view.target
        assert h.position("BTCUSDT") == D(10)
    finally:
        h.node.stop(timeout=10)


# The parent book alone (what OmsState journals, snapshots and replays) -------------


def _parent_order(parent_id: str, quantity: str = "2") -> SubmitParentOrder:
    return SubmitParentOrder(
        parent_id=parent_id,
        strategy_id="s1",
        venue="paper",
        symbol="BTCUSDT",
        side=Side.BUY,
        quantity=D(quantity),
        algorithm=TwapParams(duration=10.0, slices=2),
    )


def _child(parent_id: str, n: int, quantity: str = "1") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=child_order_id(parent_id, n),
        strategy_id="s1",
        venue="paper",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D(quantity),
        parent_id=parent_id,
    )


def _fill(client_order_id: str, quantity: str, price: str, xid: str) -> OrderFilled:
    return OrderFilled(
        client_order_id=client_order_id,
        venue="paper",
        venue_order_id=f"v-{client_order_id}",
        execution_id=xid,
        symbol="BTCUSDT",
        side=Side.BUY,
        last_quantity=D(quantity),
        last_price=D(price),
    )


def test_the_state_links_children_and_sums_their_fills_once() -> None:
    state = OmsState()
    state.register_parent(_parent_order("p1"), 1)
    for n in (1, 2):
        state.register(_child("p1", n), 2)
        state.mark_submitted(child_order_id("p1", n), 3)
    state.apply(_fill(child_order_id("p1", 1), "1", "100", "x1"), 4)
    state.apply(_fill(child_order_id("p1", 1), "1", "100", "x1"), 5)  # a duplicate
    record = state.parents.get("p1")
    assert record is not None and record.state is ParentState.WORKING
    assert (record.filled, record.avg_price) == (D(1), D(100))
    state.apply(_fill(child_order_id("p1", 2), "1", "102", "x2"), 6)
    assert record.state is ParentState.FILLED and record.closed_ns == 6
    assert (record.filled, record.avg_price) == (D(2), D(101))
    assert record.children == [child_order_id("p1", 1), child_order_id("p1", 2)]
    assert state.parents.parent_of(child_order_id("p1", 2)) is record


def test_parent_moves_follow_the_transition_table() -> None:
    state = OmsState()
    state.register_parent(_parent_order("p1"), 1)
    with pytest.raises(ParentTransitionError):
        state.register_parent(_parent_order("p1"), 2)
    state.move_parent("p1", ParentState.PENDING_CANCEL, "stop", 3)
    with pytest.raises(ParentTransitionError, match="PENDING_CANCEL -> WORKING"):
        state.move_parent("p1", ParentState.WORKING, "", 4)
    state.move_parent("p1", ParentState.CANCELED, "stop", 5)
    with pytest.raises(ParentTransitionError):
        state.move_parent("p1", ParentState.FILLED, "", 6)
    with pytest.raises(ParentTransitionError, match="no parent"):
        state.move_parent("nope", ParentState.CANCELED, "", 7)


def test_parents_survive_a_snapshot_and_the_journal_replays_them() -> None:
    entries = [
        JournalEntry(kind=EntryKind.PARENT, ts_ns=1, message=_parent_order("p1")),
        JournalEntry(kind=EntryKind.REGISTER, ts_ns=2, message=_child("p1", 1)),
        JournalEntry(kind=EntryKind.SUBMITTED, ts_ns=3, client_order_id=child_order_id("p1", 1)),
        JournalEntry(
            kind=EntryKind.REPORT, ts_ns=4, message=_fill(child_order_id("p1", 1), "1", "99", "x")
        ),
        JournalEntry(
            kind=EntryKind.PARENT, ts_ns=5, message=CancelParentOrder(parent_id="p1", reason="r")
        ),
        JournalEntry(
            kind=EntryKind.PARENT,
            ts_ns=6,
            message=ParentCanceled(
                parent_id="p1",
                strategy_id="s1",
                state=ParentState.CANCELED,
                filled=D(1),
                reason="r",
            ),
        ),
    ]
    replayed = replay([decode_entry(encode_entry(e)) for e in entries]).state
    record = replayed.parents.get("p1")
    assert record is not None and record.state is ParentState.CANCELED
    assert (record.filled, record.reason, record.closed_ns) == (D(1), "r", 6)
    restored = OmsState.restore(replayed.snapshot())
    assert restored.parents.to_plain() == replayed.parents.to_plain()
    # A snapshot taken before parents existed restores with none.
    old = replayed.snapshot()
    del old["parents"]
    assert len(OmsState.restore(old).parents) == 0


def test_finished_parents_are_forgotten_past_the_capacity() -> None:
    book = ParentBook(closed_capacity=2)
    for n in range(4):
        book.register(_parent_order(f"p{n}"), n)
        book.link_child(f"p{n}", child_order_id(f"p{n}", 1))
    book.register(_parent_order("working"), 9)
    for n in range(4):
        book.move(f"p{n}", ParentState.CANCELED, "done", 10 + n)
    assert [r.parent_id for r in book] == ["p2", "p3", "working"]
    assert book.parent_of(child_order_id("p0", 1)) is None
    again = ParentBook.from_plain(book.to_plain())
    assert again.to_plain() == book.to_plain()
    again.register(_parent_order("p9"), 20)
    again.move("p9", ParentState.CANCELED, "done", 21)
    assert [r.parent_id for r in again] == ["p3", "working", "p9"]


def test_the_execution_package_imports_only_the_core() -> None:
    """Algorithms reach venues only through the OMS: no adapter, no network, no testing."""
    import ast

    import tradenode.execution

    allowed = ("tradenode.execution", "tradenode.actors", "tradenode.messages")
    allowed += ("tradenode.supervision", "tradenode._config")
    foreign = {"httpx", "trio_websocket", "ib_async", "ib_insync", "ccxt", "requests"}
    package = Path(tradenode.execution.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level <= 2, path
                parent = "tradenode.execution" if node.level == 1 else "tradenode"
                module = f"{parent}.{node.module}" if node.module else parent
                assert module.startswith(allowed), (path, module)
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [alias.name for alias in node.names]
                )
                for name in names:
                    assert name.split(".")[0] not in foreign, (path, name)
                    if name.startswith("tradenode"):
                        assert name.startswith(allowed), (path, name)


def test_the_kill_switch_stops_every_working_parent() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        resting = submit_parent(
            h, D("4"), TwapParams(duration=40.0, slices=4, limit_price=D("1000"))
        )
        report = h.node.kill_switch()
        assert report.complete, report.problems
        h.sync()
        canceled = wait_parent_event(h, resting, ParentCanceled)
        assert canceled.reason == "kill switch" and canceled.filled == D(0)
        assert [c.status for c in children(h, resting)] == [OrderStatus.CANCELED]
        advance(h, 60.0)
        assert len(parent(h, resting).child_ids) == 1
        algo = h.node.directory.path("execution", "algos", resting)
        assert h.node.system.lookup(algo) is None


def test_a_twap_whose_schedule_ends_short_of_its_target_expires() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("3"), TwapParams(duration=30.0, slices=3))
        assert parent(h, pid).filled == D(1)
        # Only exposure-reducing orders from now on: the next buys are denied.
        h.node.risk.ask(SetTradingState(TradingState.REDUCING, "test: no more buying"))
        advance(h, 10.0)
        advance(h, 10.0)
        expired = wait_parent_event(h, pid, ParentCanceled)
        assert expired.state is ParentState.EXPIRED and expired.filled == D(1)
        assert "TWAP schedule over with 1" in expired.reason
        sent = children(h, pid)
        # Slices 2 and 3, then MAX_FINAL_CHILDREN last tries, each denied by the guard.
        assert [c.client_order_id for c in sent] == [
            child_order_id(pid, 1),
            child_order_id(pid, 2),
            child_order_id(pid, 3),
            *(child_order_id(pid, 3, j) for j in range(1, MAX_FINAL_CHILDREN + 1)),
        ]
        assert [c.status for c in sent[1:]] == [OrderStatus.DENIED] * (len(sent) - 1)
        assert parent(h, pid).state is ParentState.EXPIRED
        assert h.position("BTCUSDT") == D(1)


def test_a_parent_without_a_venue_has_each_child_routed() -> None:
    routed = (
        "instruments:\n  BTC-USD: {venues: {paper: BTCUSDT, paper2: BTCUSDT}}\n"
        "routing: {policy: preferred, venues: [paper2, paper]}\n"
    )
    with running_node(routed) as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(
            h, D("2"), TwapParams(duration=20.0, slices=2), symbol="BTC-USD", venue="auto"
        )
        advance(h, 10.0)
        filled = wait_parent_event(h, pid, ParentFilled)
        assert filled.filled == D(2)
        sent = children(h, pid)
        assert [c.client_order_id for c in sent] == [child_order_id(pid, k) for k in (1, 2)]
        assert {(c.venue, c.symbol) for c in sent} == {("paper2", "BTCUSDT")}
        assert all(c.order.route for c in sent)  # the route and why, recorded on the order
        assert h.position("BTCUSDT", venue="paper2") == D(2)


def test_child_ids_read_back_and_never_collide_across_parents() -> None:
    assert child_order_id("p", 3) == "p-3" and child_order_id("p", 3, 1) == "p-3_1"
    assert child_number("p", "p-3_1") == (3, 1) and child_number("p", "p-3") == (3, 0)
    # Parent "p-3"'s first child is not parent "p"'s slice 3 catch-up, nor the reverse.
    assert child_order_id("p-3", 1) != child_order_id("p", 3, 1)
    assert child_number("p", child_order_id("p-3", 1)) is None
    assert child_number("p", "p-x") is None and child_number("p", "q-1") is None


def test_a_parent_id_its_venue_would_refuse_in_a_child_id_is_denied() -> None:
    """Binance takes [A-Za-z0-9_-] only: a parent id with ':' would make every child
    refused there, so the parent is denied before any child is made."""

    class _Binance:
        instruments = InstrumentMap({})  # no instrument listed on several venues

        def venue(self, name: str) -> VenueEntry:
            rules = ClientIdRules(36, string.ascii_letters + string.digits + "_-")
            return VenueEntry(name, None, None, VenueCapabilities(client_ids=rules))  # type: ignore[arg-type]

    engine = RiskEngine(RiskLimits(), now_ns=lambda: 0)
    ctx = RiskBook().context(0)
    bad = dataclasses.replace(_parent_order("a:b"), venue="binance")
    denial = parent_denial(bad, _Binance(), engine, ctx, 0)  # type: ignore[arg-type]
    assert denial is not None and denial.code is DenialCode.INVALID_ORDER
    assert "'a:b-99999_9'" in denial.reason and "binance" in denial.reason
    good = dataclasses.replace(_parent_order("a_b-1"), venue="binance")
    assert parent_denial(good, _Binance(), engine, ctx, 0) is None  # type: ignore[arg-type]
