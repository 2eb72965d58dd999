"""VWAP with a profile observed on the venue's tape (issue #18: "a volume profile
(from config or from observed market volume)").

The algorithm watches the paper venue's seeded tape for ``lookback`` seconds,
bins it into ``buckets``, journals the learned weights with the parent and
works the window to them. The tests compute the profile they expect from the
same tape, recorded by a trade subscription of their own, and check the
parent follows it, fills exactly its target, and keeps the same profile across
an algorithm restart and a node restarted on its journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tradenode import Node, parse_config
from tradenode.actors import ParentView, TradeSubscription

# The parent book and the journal entry codec: what the OMS snapshots and replays.
from tradenode.actors._oms_entries import EntryKind, JournalEntry, decode_entry, encode_entry

# The replay of journal entries into OMS state (no public name).
from tradenode.actors._oms_replay import replay

# The parent book itself, to check its snapshot format old and new.
from tradenode.actors._parents import ParentBook, ParentRecord, ParentTransitionError
from tradenode.execution import (
    Decision,
    VolumeProfile,
    VwapAlgorithm,
    VwapPolicy,
    register_algorithm,
)
from tradenode.messages import (
    DenialCode,
    MarketTrade,
    ParentProfile,
    ParentState,
    Side,
    SubmitParentOrder,
    VwapParams,
    decode,
    encode,
)

# The VWAP parameter checks behind VwapParams.problems(), tested one by one.
from tradenode.messages._algos import ParamProblem, check_vwap
from tradenode.supervision import EventRecorder, ManualClock, SupervisionEventKind

from ._execution_helpers import (
    ParentCanceled,
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
SECOND = 1_000_000_000

#: 20 s of tape in four 5 s buckets (the paper venue prints once a second), then
#: 40 s of execution in four 10 s buckets, a look every 2 s.
OBSERVED = VwapParams(duration=40.0, lookback=20.0, buckets=4, interval=2.0, tolerance=D("0.02"))
TARGET = D("10.0000")
LOT = D("0.0001")


# -- parameters ------------------------------------------------------------------------


def _check(**overrides: object) -> ParamProblem | None:
    params: dict[str, object] = {"quantity": D(10), "duration": 60, "profile": ()}
    params.update(overrides)
    return check_vwap(**params)  # type: ignore[arg-type]


def test_an_observed_profile_needs_a_lookback_and_buckets() -> None:
    assert _check(lookback=30, buckets=6) is None
    assert _check(profile=[D(1)]) is None
    assert VwapParams(duration=60.0, lookback=30.0, buckets=3).needs_tape
    assert not VwapParams(duration=60.0, profile=(D(1),)).needs_tape


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"lookback": 0, "buckets": 2}, "INVALID_DURATION"),
        ({"lookback": -5, "buckets": 2}, "INVALID_DURATION"),
        ({"lookback": float("nan"), "buckets": 2}, "INVALID_DURATION"),
        ({"lookback": 10}, "INVALID_PROFILE"),  # no buckets
        ({"lookback": 10, "buckets": 0}, "INVALID_PROFILE"),
        ({"lookback": 10, "buckets": 1001}, "INVALID_PROFILE"),
        ({"lookback": 10, "buckets": True}, "INVALID_PROFILE"),
        ({"lookback": 10, "buckets": 2, "profile": [D(1)]}, "INVALID_PROFILE"),  # both
        ({"buckets": 2, "profile": [D(1)]}, "INVALID_PROFILE"),  # buckets without lookback
        ({}, "EMPTY_PROFILE"),  # neither
    ],
)
def test_bad_observed_parameters_are_problems_with_a_code(
    overrides: dict[str, object], code: str
) -> None:
    problem = _check(**overrides)
    assert isinstance(problem, ParamProblem)
    assert problem.code == code
    assert problem.reason


def test_the_public_params_deny_an_observed_profile_with_a_code() -> None:
    assert VwapParams(duration=60.0, lookback=-1.0, buckets=2).problems(D(1)) == (
        "INVALID_DURATION: VwapParams.lookback=-1.0: must be a number of seconds > 0"
    )
    reason = VwapParams(duration=60.0, lookback=10.0).problems(D(1))
    assert reason is not None and reason.startswith("INVALID_PROFILE: VwapParams.buckets=None")
    with pytest.raises(ValueError, match=r"VwapParams\.buckets=2\.0: must be an int"):
        VwapParams(duration=60.0, lookback=10.0, buckets=2.0)  # type: ignore[arg-type]


def test_old_vwap_params_still_decode_with_a_configured_profile() -> None:
    """A VwapParams frame written before lookback/buckets existed decodes unchanged."""
    params = VwapParams(duration=60.0, profile=(D(1), D(2)))
    assert decode(encode(params)) == params
    assert params.lookback is None and params.buckets is None
    observed = VwapParams(duration=60.0, lookback=30.0, buckets=3)
    assert decode(encode(observed)) == observed


# -- the learned profile: a message, the parent book, the journal ---------------------------


def _learned(parent_id: str = "v1", weights: tuple[Decimal, ...] = (D(3), D(1))) -> ParentProfile:
    return ParentProfile(parent_id=parent_id, weights=weights, start_ns=50, observed_from_ns=10)


def _parent_order(parent_id: str = "v1") -> SubmitParentOrder:
    return SubmitParentOrder(
        parent_id=parent_id,
        strategy_id="s1",
        symbol="BTCUSDT",
        side=Side.BUY,
        quantity=D(1),
        algorithm=VwapParams(duration=60.0, lookback=30.0, buckets=2),
        venue="paper",
    )


@pytest.mark.parametrize(
    ("weights", "match"),
    [((), "needs at least one bucket"), ((D(0),), "every weight is zero"), ((D(-1),), "< 0")],
)
def test_a_learned_profile_is_a_real_profile(weights: tuple[Decimal, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ParentProfile(parent_id="v1", weights=weights, start_ns=0)


def test_a_parent_learns_its_profile_once_and_keeps_it_in_its_snapshot() -> None:
    book = ParentBook()
    with pytest.raises(ParentTransitionError, match="no parent"):
        book.learn(_learned())
    book.register(_parent_order(), 1)
    record = book.learn(_learned())
    assert record.profile == _learned()
    with pytest.raises(ParentTransitionError, match="already has its profile"):
        book.learn(_learned(weights=(D(1), D(1))))
    again = ParentBook.from_plain(book.to_plain())
    restored = again.get("v1")
    assert restored is not None and restored.profile == _learned()
    # A parent snapshotted before learned profiles existed (10 fields) restores without one.
    old = ParentRecord(order=_parent_order("v2"), accepted_ns=2).to_plain()[:10]
    assert ParentRecord.from_plain(old, "old").profile is None
    with pytest.raises(ValueError, match="not a ParentProfile"):
        ParentRecord.from_plain([*old, encode(_parent_order())], "bad")


def test_the_journal_replays_the_learned_profile() -> None:
    entries = [
        JournalEntry(kind=EntryKind.PARENT, ts_ns=1, message=_parent_order()),
        JournalEntry(kind=EntryKind.PARENT, ts_ns=2, message=_learned()),
        # A second one (never journaled by the OMS, which refuses it) is refused on replay.
        JournalEntry(kind=EntryKind.PARENT, ts_ns=3, message=_learned(weights=(D(1),))),
    ]
    state = replay([decode_entry(encode_entry(e)) for e in entries]).state
    record = state.parents.get("v1")
    assert record is not None and record.profile == _learned()


# -- on a running node -------------------------------------------------------------------------


def _watch_tape(h: Harness) -> EventRecorder:
    """The test's own subscription to the paper venue's tape: what it printed."""
    address, seen = h.strategy("s1")
    entry = h.node.directory.venue("paper")
    assert entry is not None
    entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))
    h.sync()
    return seen


def _expected_profile(seen: EventRecorder, start_ns: int, params: VwapParams) -> VolumeProfile:
    """The profile of the prints the test saw during the lookback (every print is the
    market's: nothing of ours trades during the warm-up)."""
    assert params.lookback is not None and params.buckets is not None
    trades = [(m.ts_ns, m.quantity) for m in seen.items if isinstance(m, MarketTrade)]
    bucket_ns = int(params.lookback * SECOND) // params.buckets
    profile = VolumeProfile.from_trades(
        trades, start_ns=start_ns, bucket_ns=bucket_ns, buckets=params.buckets
    )
    assert isinstance(profile, VolumeProfile)
    return profile


def _warm_up(h: Harness, pid: str) -> None:
    """The lookback but its last half second, half a second at a time: the clock stops
    on every one of the venue's prints (once a second, half a second off the parent's
    grid), so each is printed and seen at its own time. Nothing is sent meanwhile."""
    assert OBSERVED.lookback is not None
    for _ in range(int(OBSERVED.lookback * 2) - 1):
        advance(h, 0.5)
        assert parent(h, pid).child_ids == ()
        assert parent(h, pid).profile is None


def _policy(view: ParentView) -> VwapPolicy:
    assert view.profile is not None
    return VwapPolicy(
        quantity=view.target,
        start_ns=view.profile.start_ns,
        duration_ns=int(OBSERVED.duration * SECOND),
        profile=VolumeProfile(view.profile.weights),
        lot=LOT,
    )


def _follow(h: Harness, pid: str, looks: int) -> None:
    """Look by look (every 2 s), the parent is on its learned profile: exactly (market
    children fill at once on paper), so well within the tolerance."""
    for _ in range(looks):
        advance(h, 2.0)
        view = parent(h, pid)
        now = h.clock.time_ns()
        scheduled = _policy(view).target_filled(now)
        assert view.filled == scheduled, (now, view.filled, scheduled)
        assert abs(view.filled - scheduled) <= OBSERVED.tolerance * view.target
        assert view.filled + view.open_quantity <= view.target


def test_an_observed_vwap_learns_the_tapes_profile_and_follows_it() -> None:
    with running_node() as h:
        seen = _watch_tape(h)
        advance(h, 0.5)  # off the venue's 1 s print grid: no print on a bucket's edge
        pid = submit_parent(h, TARGET, OBSERVED)
        start = parent(h, pid).accepted_ns
        _warm_up(h, pid)
        advance(h, 0.5)  # the lookback's end: the profile is learned, journaled first
        view = parent(h, pid)
        expected = _expected_profile(seen, start, OBSERVED)
        assert view.profile == ParentProfile(
            parent_id=pid,
            weights=expected.weights,
            start_ns=start + 20 * SECOND,
            observed_from_ns=start,
            ts_ns=start + 20 * SECOND,
        )
        # The tape's volume is uneven, so this is not a TWAP in disguise.
        assert len(set(expected.weights)) > 1
        assert view.child_ids == ()  # the schedule starts now: nothing due yet
        _follow(h, pid, 20)
        filled = wait_parent_event(h, pid, ParentFilled)
        assert filled.filled == TARGET
        # At each bucket's end the parent had filled that bucket's cumulative share.
        sent = children(h, pid)
        shares, cumulative = expected.shares, D(0)
        for bucket in range(4):
            cumulative += shares[bucket]
            end = start + (20 + 10 * (bucket + 1)) * SECOND
            done = sum((c.filled_quantity for c in sent if c.created_ns <= end), D(0))
            wanted = TARGET if bucket == 3 else (TARGET * cumulative // LOT) * LOT
            assert done == wanted, bucket
        assert all(c.created_ns > start + 20 * SECOND for c in sent)
        # Exactly the target, by the OMS and by the venue's own books; never more.
        assert sum(c.filled_quantity for c in sent) == TARGET
        assert h.position("BTCUSDT") == TARGET
        assert h.node.venues["paper"].position("BTCUSDT") == TARGET  # type: ignore[attr-defined]
        advance(h, 10.0)
        assert len(parent(h, pid).child_ids) == len(sent)
        assert h.node.venues["paper"].position("BTCUSDT") == TARGET  # type: ignore[attr-defined]


def test_a_lookback_with_no_market_volume_ends_the_parent_with_nothing_sent() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        advance(h, 0.25)
        # Half a second between two of the venue's prints (once a second).
        params = VwapParams(duration=10.0, lookback=0.5, buckets=1)
        pid = submit_parent(h, TARGET, params)
        advance(h, 0.5)
        canceled = wait_parent_event(h, pid, ParentCanceled)
        assert canceled.state is ParentState.EXPIRED
        assert "no market volume observed" in canceled.reason
        assert "EMPTY_PROFILE" in canceled.reason
        assert parent(h, pid).child_ids == () and parent(h, pid).profile is None
        assert h.position("BTCUSDT") == 0


def test_an_observed_vwap_without_a_tape_is_denied_no_tape() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        paper = h.node.directory.venue("paper")
        assert paper is not None
        # A venue that declares quotes only (the default capabilities), reached through
        # the paper venue's own actors: the guard decides on the declaration alone.
        h.node.directory.register_venue(
            type(paper)(name="quiet", breaker=paper.breaker, broker=paper.broker)
        )
        for venue, code, says in (
            ("quiet", DenialCode.UNSUPPORTED_BY_VENUE, "venue quiet does not print them"),
            ("auto", DenialCode.INVALID_ORDER, "name the venue"),  # routed: no one venue
        ):
            pid = submit_parent(h, TARGET, OBSERVED, venue=venue)
            denied = wait_parent_event(h, pid, ParentDenied)
            assert denied.code is code
            assert denied.reason.startswith("NO_TAPE: VwapParams ")
            assert says in denied.reason
            assert parent_events(h, pid) == [denied]
        assert h.open_orders() == ()


# -- restarts ------------------------------------------------------------------------------------


class _FailsOnceMidWay(VwapAlgorithm):
    """Raises once, at the first look after its sixth child went out."""

    failed: ClassVar[list[int]] = []

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        if not self.failed and len(view.child_ids) >= 6:
            self.failed.append(self.context.generation)
            raise RuntimeError("algorithm bug mid-way")
        return super().decide(view, now_ns)


@pytest.fixture
def failing_vwap() -> Iterator[list[int]]:
    _FailsOnceMidWay.failed.clear()
    register_algorithm(VwapParams, _FailsOnceMidWay)
    try:
        yield _FailsOnceMidWay.failed
    finally:
        register_algorithm(VwapParams, VwapAlgorithm)


def test_a_restarted_algorithm_keeps_the_profile_it_learned(failing_vwap: list[int]) -> None:
    with running_node() as h:
        events = EventRecorder()
        h.node.system.events.subscribe(events)
        h.strategy("s1")
        h.sync()
        advance(h, 0.5)
        pid = submit_parent(h, TARGET, OBSERVED)
        algo = h.node.directory.path("execution", "algos", pid)
        _warm_up(h, pid)
        advance(h, 0.5)
        learned = parent(h, pid).profile
        assert learned is not None
        _follow(h, pid, 6)
        advance(h, 2.0)  # the look that fails
        assert failing_vwap == [1]
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.FAILED)
        advance(h, 0.5)  # the restart backoff, on the node's clock
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.RESTARTED)
        h.sync()
        # The new incarnation read the profile back: no second warm-up, no new profile;
        # it caught up at once and is on the profile again from its next look.
        assert parent(h, pid).profile == learned
        assert len(parent(h, pid).child_ids) == 7
        advance(h, 1.5)
        view = parent(h, pid)
        assert view.filled == _policy(view).target_filled(h.clock.time_ns())
        _follow(h, pid, 12)
        wait_parent_event(h, pid, ParentFilled)
        assert parent(h, pid).profile == learned
        assert sum(c.filled_quantity for c in children(h, pid)) == TARGET
        assert h.node.venues["paper"].position("BTCUSDT") == TARGET  # type: ignore[attr-defined]


JOURNALED = """
journal: {{path: '{path}', fsync: every_record}}
"""


def _node(tmp_path: Path, clock: ManualClock, venues: dict[str, Any] | None = None) -> Harness:
    node = Node(
        parse_config(BASE_CONFIG + JOURNALED.format(path=tmp_path / "journal")), clock=clock
    )
    # The embedded paper venue outlives the process, as a real venue would.
    node.venues.update(venues or {})
    node.start()
    return Harness(node, clock)


def test_a_node_restarted_on_its_journal_keeps_the_learned_profile(tmp_path: Path) -> None:
    clock = ManualClock()
    h = _node(tmp_path, clock)
    try:
        h.strategy("s1")
        h.sync()
        advance(h, 0.5)
        pid = submit_parent(h, TARGET, OBSERVED)
        _warm_up(h, pid)
        advance(h, 0.5)
        learned = parent(h, pid).profile
        assert learned is not None
        _follow(h, pid, 7)  # into the window's second bucket
        before = parent(h, pid)
        assert D(0) < before.filled < TARGET
    finally:
        h.node.stop(timeout=10)
    venues: dict[str, Any] = dict(h.node.venues)
    h = _node(tmp_path, clock, venues=venues)
    try:
        h.strategy("s1")
        h.sync()
        view = parent(h, pid)
        # From the journal: the same profile and schedule, the same children; no warm-up.
        assert view.state is ParentState.WORKING
        assert view.profile == learned
        assert view.child_ids == before.child_ids and view.filled == before.filled
        _follow(h, pid, 13)
        filled = wait_parent_event(h, pid, ParentFilled)
        assert filled.filled == TARGET
        assert parent(h, pid).profile == learned
        assert venues["paper"].position("BTCUSDT") == TARGET
    finally:
        h.node.stop(timeout=10)


def test_a_node_restarted_during_the_warm_up_watches_a_whole_lookback_again(
    tmp_path: Path,
) -> None:
    """Nothing learned is durable before the lookback ends (a venue does not replay its
    tape), and nothing was sent: the new node's algorithm watches a whole lookback from
    when it subscribed, and the schedule starts at its end, never on half a profile."""
    clock = ManualClock()
    h = _node(tmp_path, clock)
    try:
        h.strategy("s1")
        h.sync()
        advance(h, 0.5)
        pid = submit_parent(h, TARGET, OBSERVED)
        for _ in range(20):  # half the lookback
            advance(h, 0.5)
        assert parent(h, pid).profile is None and parent(h, pid).child_ids == ()
    finally:
        h.node.stop(timeout=10)
    venues: dict[str, Any] = dict(h.node.venues)
    h = _node(tmp_path, clock, venues=venues)
    try:
        seen = _watch_tape(h)
        again = clock.time_ns()
        _warm_up(h, pid)
        advance(h, 0.5)
        view = parent(h, pid)
        expected = _expected_profile(seen, again, OBSERVED)
        assert view.profile is not None
        assert view.profile.weights == expected.weights
        assert (view.profile.observed_from_ns, view.profile.start_ns) == (
            again,
            again + 20 * SECOND,
        )
        assert view.child_ids == ()
        _follow(h, pid, 20)
        filled = wait_parent_event(h, pid, ParentFilled)
        assert filled.filled == TARGET
        assert venues["paper"].position("BTCUSDT") == TARGET
    finally:
        h.node.stop(timeout=10)
