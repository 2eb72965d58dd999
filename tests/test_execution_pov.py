"""POV: children that track a fraction of the market's volume, within bounds,
and parameter checks that deny instead of raising."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradenode import MalformedPayloadError
from tradenode.actors import MarketDataKind, ParentView, TradeSubscription

# The Binance codec is private: its trade event is tested here, with the POV that uses it.
from tradenode.brokers.binance._codec import parse_market_message, parse_public_trade
from tradenode.brokers.paper import PaperVenue
from tradenode.execution import Decision, PovAlgorithm, PovChild, PovPolicy, register_algorithm
from tradenode.messages import (
    DenialCode,
    MarketTrade,
    OrderFilled,
    PovParams,
    Side,
    SubmitOrder,
    child_order_id,
)

# The parameter checks behind AlgoParams.problems(), tested one by one.
from tradenode.messages._algos import ParamProblem, check_pov
from tradenode.supervision import EventRecorder, ManualClock, SupervisionEventKind
from tradenode.testing.venues import BinanceVenue

from ._binance_helpers import binance_node, venue_clock
from ._execution_helpers import (
    ParentCanceled,
    ParentDenied,
    ParentFilled,
    ParentState,
    advance,
    children,
    parent,
    parent_events,
    submit_parent,
    wait_parent_event,
)
from ._node_helpers import running_node

D = Decimal


def _policy(**overrides: object) -> PovPolicy:
    params: dict[str, object] = {
        "quantity": D(10),
        "participation": D("0.1"),
        "lot": D("0.01"),
    }
    params.update(overrides)
    return PovPolicy(**params)  # type: ignore[arg-type]


def test_tracks_the_participation_rate_of_market_volume() -> None:
    policy = _policy()
    assert policy.next_child(market_volume=D(0), filled=D(0), open_quantity=D(0)) is None
    assert policy.next_child(market_volume=D(25), filled=D(0), open_quantity=D(0)) == PovChild(
        quantity=D("2.50"), behind=False
    )
    # open children count as if they filled
    child = policy.next_child(market_volume=D(40), filled=D(2), open_quantity=D("0.5"))
    assert child == PovChild(quantity=D("1.50"), behind=False)
    assert policy.next_child(market_volume=D(40), filled=D(4), open_quantity=D(0)) is None


def test_never_past_the_quantity() -> None:
    policy = _policy()
    child = policy.next_child(market_volume=D(10_000), filled=D(9), open_quantity=D("0.5"))
    assert child is not None and child.quantity == D("0.5")
    assert policy.next_child(market_volume=D(10_000), filled=D(10), open_quantity=D(0)) is None


def test_below_the_minimum_it_says_behind() -> None:
    policy = _policy(min_participation=D("0.05"), max_participation=D("0.2"))
    child = policy.next_child(market_volume=D(100), filled=D(2), open_quantity=D(0))
    assert child == PovChild(quantity=D(8), behind=True)
    child = policy.next_child(market_volume=D(100), filled=D(6), open_quantity=D(0))
    assert child == PovChild(quantity=D(4), behind=False)


def test_small_children_wait_for_more_volume_except_the_last() -> None:
    policy = _policy(min_child_quantity=D(1))
    assert policy.next_child(market_volume=D(5), filled=D(0), open_quantity=D(0)) is None
    assert policy.next_child(market_volume=D(10), filled=D(0), open_quantity=D(0)) == PovChild(
        quantity=D(1), behind=False
    )
    last = policy.next_child(market_volume=D(1000), filled=D("9.6"), open_quantity=D(0))
    assert last is not None and last.quantity == D("0.4")


def test_bounds() -> None:
    policy = _policy(min_participation=D("0.05"), max_participation=D("0.15"))
    assert policy.within_bounds(D(100), D(10), slack=D(0))
    assert policy.within_bounds(D(100), D(5), slack=D(0))
    assert not policy.within_bounds(D(100), D("4.9"), slack=D(0))
    assert policy.within_bounds(D(100), D("4.9"), slack=D("0.1"))
    assert not policy.within_bounds(D(10), D("1.6"), slack=D(1))


@given(
    volumes=st.lists(st.integers(0, 500), min_size=1, max_size=60),
    fill_ratio=st.sampled_from([D(1), D("0.5"), D(0)]),
    rate=st.sampled_from([D("0.05"), D("0.1"), D("0.3"), D(1)]),
)
def test_never_above_the_maximum_even_if_every_open_child_fills(
    volumes: list[int], fill_ratio: Decimal, rate: Decimal
) -> None:
    policy = _policy(participation=rate, max_participation=min(D(1), rate * 2))
    market, filled, open_quantity = D(0), D(0), D(0)
    for volume in volumes:
        market += D(volume) / 10
        child = policy.next_child(market_volume=market, filled=filled, open_quantity=open_quantity)
        if child is not None:
            open_quantity += child.quantity
        assert filled + open_quantity <= policy.ceiling(market)
        assert filled + open_quantity <= policy.quantity
        done = (open_quantity * fill_ratio // policy.lot) * policy.lot
        filled, open_quantity = filled + done, open_quantity - done


# -- parameters ----------------------------------------------------------------------


def _check(**overrides: object) -> ParamProblem | None:
    params: dict[str, object] = {"quantity": D(10), "participation": D("0.1")}
    params.update(overrides)
    return check_pov(**params)  # type: ignore[arg-type]


def test_good_parameters_pass() -> None:
    assert _check() is None
    assert (
        _check(
            participation=D(1),
            min_participation=D("0.5"),
            max_participation=D(1),
            min_child_quantity=D(1),
            limit_price=D("10.5"),
            duration=30,
            interval=1,
        )
        is None
    )


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"participation": D(0)}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": D("-0.1")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": D("1.01")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": 0.1}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": None}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"min_participation": D("0.2")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"max_participation": D("0.05")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"max_participation": D(2)}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"min_child_quantity": D(11)}, "INVALID_PARAMETER"),
        ({"min_child_quantity": D(0)}, "INVALID_PARAMETER"),
        ({"duration": -1}, "INVALID_DURATION"),
        ({"interval": 0}, "INVALID_DURATION"),
    ],
)
def test_bad_parameters_are_problems_with_a_code(overrides: dict[str, object], code: str) -> None:
    problem = _check(**overrides)
    assert isinstance(problem, ParamProblem)
    assert problem.code == code
    assert problem.reason


def test_the_public_params_deny_with_a_code_and_a_reason() -> None:
    assert PovParams(participation=D("0.1")).problems(D(10)) is None
    reason = PovParams(participation=D("1.5")).problems(D(10))
    assert reason == (
        "PARTICIPATION_OUT_OF_RANGE: PovParams.participation=1.5: must be within (0, 1]"
    )
    assert PovParams(participation=D("0.1"), duration=-3).problems(D(1)) == (
        "INVALID_DURATION: PovParams.duration=-3.0: must be a number of seconds > 0"
    )
    with pytest.raises(ValueError, match=r"PovParams\.interval='1': must be a number"):
        PovParams(participation=D("0.1"), interval="1")  # type: ignore[arg-type]


# -- the paper venue's public tape ------------------------------------------------------


def test_the_paper_venue_prints_its_tape_to_trade_subscribers() -> None:
    """Each market step prints a seeded market trade per symbol, and the account's
    own fills are printed too (a tape does not say whose a trade is); only the
    symbols subscribed arrive, and subscribing again does not double the tape."""
    with running_node() as h:
        address, seen = h.strategy()
        entry = h.node.directory.venue("paper")
        assert entry is not None
        assert MarketDataKind.TRADES in entry.capabilities.market_data
        entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))
        entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))  # a restarted subscriber
        h.sync()
        for _ in range(3):
            h.clock.advance(1.0)
            h.sync()
        market = [m for m in seen.items if isinstance(m, MarketTrade)]
        assert len(market) == 3
        assert {(t.venue, t.symbol, t.aggressor) for t in market} == {("paper", "BTCUSDT", None)}
        assert len({t.trade_id for t in market}) == 3
        assert all(t.quantity > 0 and t.quantity % D("0.0001") == 0 for t in market)

        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.0100")))
        (fill,) = h.wait_for(OrderFilled, coid)
        h.sync()
        ours = [m for m in seen.items if isinstance(m, MarketTrade)][3:]
        assert [(t.quantity, t.price, t.aggressor) for t in ours] == [
            (fill.last_quantity, fill.last_price, Side.BUY)
        ]


# -- on a running node -------------------------------------------------------------------


def _market_volume(prints: list[MarketTrade], since_ns: int) -> Decimal:
    """The paper tape's own prints since ``since_ns`` (ours carry an aggressor side)."""
    return sum((t.quantity for t in prints if t.aggressor is None and t.ts_ns >= since_ns), D(0))


def test_a_pov_stays_within_its_participation_bounds() -> None:
    """10 % of the tape, bounds [5 %, 15 %], market children: after every market tick
    the parent's fills are at most 15 % of the market's volume since it started (the
    tape's prints, ours excluded), and at least 5 % of it up to the tick it has not
    seen yet; it fills its target exactly, never more."""
    with running_node() as h:
        address, seen = h.strategy("s1")
        entry = h.node.directory.venue("paper")
        assert entry is not None
        entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))
        h.sync()
        params = PovParams(
            participation=D("0.1"),
            min_participation=D("0.05"),
            max_participation=D("0.15"),
            interval=1.0,
        )
        pid = submit_parent(h, D("0.5000"), params)
        start = parent(h, pid).accepted_ns
        ticks = 0
        while parent(h, pid).filled < D("0.5") and ticks < 200:
            before = _market_volume([m for m in seen.items if isinstance(m, MarketTrade)], start)
            advance(h, 1.0)
            ticks += 1
            volume = _market_volume([m for m in seen.items if isinstance(m, MarketTrade)], start)
            view = parent(h, pid)
            assert view.filled + view.open_quantity <= D("0.15") * volume, ticks
            if view.filled < view.target:
                # The minimum is 5 % of the volume up to the target, never above it
                # (``PovPolicy.floor``): once 5 % of the tape passes 0.5 the parent
                # owes its whole target, less one lot of rounding, not more.
                assert view.filled >= min(D("0.05") * before, view.target) - D("0.0001"), ticks
        assert 5 < ticks < 200
        wait_parent_event(h, pid, ParentFilled)
        sent = children(h, pid)
        assert len(sent) > 3
        assert sum(c.filled_quantity for c in sent) == D("0.5")
        assert h.position("BTCUSDT") == D("0.5")
        advance(h, 10.0)
        assert len(parent(h, pid).child_ids) == len(sent)


def test_a_pov_ends_with_its_duration() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        params = PovParams(participation=D("0.01"), duration=5.0)
        pid = submit_parent(h, D("100.0000"), params)
        for _ in range(8):
            advance(h, 1.0)
        canceled = wait_parent_event(h, pid, ParentCanceled)
        assert "POV duration over" in canceled.reason
        assert canceled.state is ParentState.EXPIRED
        view = parent(h, pid)
        assert D(0) < view.filled < D(100)
        assert h.position("BTCUSDT") == view.filled


def test_an_invalid_pov_is_denied_with_a_code_and_a_reason() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        for params, code in (
            (PovParams(participation=D("1.5")), "PARTICIPATION_OUT_OF_RANGE"),
            (PovParams(participation=D(0)), "PARTICIPATION_OUT_OF_RANGE"),
            (
                PovParams(participation=D("0.1"), max_participation=D("0.05")),
                "PARTICIPATION_OUT_OF_RANGE",
            ),
            (PovParams(participation=D("0.1"), duration=-1.0), "INVALID_DURATION"),
        ):
            pid = submit_parent(h, D("1"), params)
            denied = wait_parent_event(h, pid, ParentDenied)
            assert denied.code is DenialCode.INVALID_ORDER
            assert denied.reason.startswith(f"{code}: PovParams.")
            assert parent_events(h, pid) == [denied]
        assert h.open_orders() == ()


# -- restarts ------------------------------------------------------------------------------


class _FailsAfterChild2(PovAlgorithm):
    """Raises right after telling the router (where children go) its second child, once."""

    failed: ClassVar[list[int]] = []

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        decision = super().decide(view, now_ns)
        if not self.failed and any(c.client_order_id.endswith("-2") for c in decision.children):
            self.failed.append(self.context.generation)
            (child,) = decision.children
            order = view.order
            assert order.venue is not None
            self.env.directory.router().tell(
                SubmitOrder(
                    client_order_id=child.client_order_id,
                    strategy_id=order.strategy_id,
                    venue=order.venue,
                    symbol=order.symbol,
                    side=order.side,
                    order_type=child.order_type,
                    quantity=child.quantity,
                    parent_id=view.parent_id,
                )
            )
            raise RuntimeError("algorithm bug right after sending child 2")
        return decision


@pytest.fixture
def failing_pov() -> Iterator[list[int]]:
    _FailsAfterChild2.failed.clear()
    register_algorithm(PovParams, _FailsAfterChild2)
    try:
        yield _FailsAfterChild2.failed
    finally:
        register_algorithm(PovParams, PovAlgorithm)


def test_a_pov_that_raises_is_restarted_and_stays_under_its_maximum(
    failing_pov: list[int],
) -> None:
    """The new incarnation cannot see the prints it missed: it presumes the parent was
    on target and counts on from there, so the maximum still holds and the target is
    filled exactly."""
    with running_node() as h:
        events = EventRecorder()
        h.node.system.events.subscribe(events)
        address, seen = h.strategy("s1")
        entry = h.node.directory.venue("paper")
        assert entry is not None
        entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))
        h.sync()
        params = PovParams(participation=D("0.1"), max_participation=D("0.15"), interval=1.0)
        pid = submit_parent(h, D("0.5000"), params)
        start = parent(h, pid).accepted_ns
        algo = h.node.directory.path("execution", "algos", pid)
        while not failing_pov:
            advance(h, 1.0)
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.FAILED)
        ticks = 0
        while parent(h, pid).filled < D("0.5") and ticks < 200:
            advance(h, 0.5)
            ticks += 1
            volume = _market_volume([m for m in seen.items if isinstance(m, MarketTrade)], start)
            view = parent(h, pid)
            assert view.filled + view.open_quantity <= D("0.15") * volume, ticks
        assert any(
            e.path == algo and e.kind is SupervisionEventKind.RESTARTED for e in events.items
        )
        wait_parent_event(h, pid, ParentFilled)
        ids = parent(h, pid).child_ids
        assert ids == tuple(child_order_id(pid, k) for k in range(1, len(ids) + 1))
        assert sum(c.filled_quantity for c in children(h, pid)) == D("0.5")
        assert h.position("BTCUSDT") == D("0.5")


# -- on the local Binance venue --------------------------------------------------------------


def test_a_pov_follows_the_local_binance_tape() -> None:
    """The Binance adapter streams <symbol>@trade to trade subscribers: a POV parent on
    the local Binance venue trades its share of the tape (our own fills, which the
    tape also prints, taken out) and never more than its maximum, checked against
    the prints the venue streamed."""
    clock = ManualClock()
    with (
        BinanceVenue(seed=11, clock=venue_clock(clock)) as venue,
        binance_node(venue, clock=clock) as h,
    ):
        address, seen = h.strategy("s1")
        entry = h.node.directory.venue("binance")
        assert entry is not None and MarketDataKind.TRADES in entry.capabilities.market_data
        entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))
        h.sync()
        params = PovParams(participation=D("0.1"), max_participation=D("0.15"), interval=1.0)
        pid = submit_parent(h, D("0.0500"), params, venue="binance")
        ticks = 0
        while parent(h, pid).filled < D("0.05") and ticks < 100:
            printed = len([m for m in seen.items if isinstance(m, MarketTrade)])
            venue.step()
            h.events("s1").wait_for(lambda m: isinstance(m, MarketTrade), count=printed + 1)
            advance(h, 1.0)
            ticks += 1
            # Every fill of ours is on the tape too: the market's is the rest.
            tape = sum((t.quantity for t in seen.items if isinstance(t, MarketTrade)), D(0))
            market = tape - sum((c.filled_quantity for c in children(h, pid)), D(0))
            view = parent(h, pid)
            assert view.filled + view.open_quantity <= D("0.15") * market, ticks
        assert ticks < 100
        wait_parent_event(h, pid, ParentFilled)
        assert sum(c.filled_quantity for c in children(h, pid)) == D("0.05")
        assert h.position("BTCUSDT") == D("0.05")


def test_the_binance_codec_reads_a_trade_event_as_a_print() -> None:
    """Binance's documented <symbol>@trade payload; ``m`` (the buyer was the maker)
    means the taker sold."""
    payload = {
        "e": "trade",
        "E": 1672515782136,
        "s": "BNBBTC",
        "t": 12345,
        "p": "0.001",
        "q": "100",
        "T": 1672515782136,
        "m": True,
        "M": True,
    }
    trade = parse_market_message("binance", {"stream": "bnbbtc@trade", "data": payload}, ts_ns=1)
    assert trade == MarketTrade(
        venue="binance",
        symbol="BNBBTC",
        trade_id="12345",
        price=D("0.001"),
        quantity=D("100"),
        aggressor=Side.SELL,
        ts_ns=1672515782136 * 1_000_000,
    )
    assert parse_public_trade("binance", {**payload, "m": False}).aggressor is Side.BUY
    with pytest.raises(MalformedPayloadError, match="trade"):
        parse_public_trade("binance", {**payload, "m": "yes"})
    with pytest.raises(MalformedPayloadError):
        parse_public_trade("binance", {**payload, "q": "-1"})


def test_a_pov_on_a_venue_without_a_tape_ends_with_the_reason() -> None:
    with running_node() as h:
        h.strategy("s1")
        entry = h.node.directory.venue("paper")
        assert entry is not None
        # As an adapter that streams no trades would declare it.
        quotes_only = replace(entry.capabilities, market_data=frozenset({MarketDataKind.QUOTES}))
        h.node.directory.register_venue(replace(entry, capabilities=quotes_only))
        h.sync()
        pid = submit_parent(h, D("1"), PovParams(participation=D("0.1")))
        ended = wait_parent_event(h, pid, ParentCanceled)
        assert "prints none" in ended.reason
        assert ended.state is ParentState.EXPIRED
        assert parent(h, pid).child_ids == ()
        assert h.open_orders() == ()


def test_a_repeated_print_is_counted_once() -> None:
    """The venue sends every event twice: each print still counts once, so the parent
    stays under its maximum of the tape's real volume."""
    with running_node() as h:
        address, seen = h.strategy("s1")
        entry = h.node.directory.venue("paper")
        assert entry is not None
        entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))
        venue = h.node.venues["paper"]
        assert isinstance(venue, PaperVenue)
        venue.duplicate_events(True)
        h.sync()
        params = PovParams(participation=D("0.15"), max_participation=D("0.15"), interval=1.0)
        pid = submit_parent(h, D("100.0000"), params)
        start = parent(h, pid).accepted_ns
        for tick in range(10):
            advance(h, 1.0)
            prints = {
                m.trade_id: m for m in seen.items if isinstance(m, MarketTrade) and m.ts_ns >= start
            }
            assert len(prints) < len([m for m in seen.items if isinstance(m, MarketTrade)])
            market = sum((t.quantity for t in prints.values() if t.aggressor is None), D(0))
            view = parent(h, pid)
            assert view.filled + view.open_quantity <= D("0.15") * market, tick
        assert parent(h, pid).filled > 0
