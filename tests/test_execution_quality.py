"""Execution-quality figures on fills computed by hand, and the book the OMS keeps for them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from tradenode.actors import ExecutionQuality, ExecutionQualityTotals, OmsState

# The OMS's own bookkeeping behind the figures (arrival book, tracker, reports) is internal.
from tradenode.actors._execution_quality import (
    ArrivalBook,
    QualityTracker,
    arrival_price,
    fee_in_quote,
    order_quality,
    parent_quality,
    quality_report,
)
from tradenode.messages import (
    OrderFilled,
    OrderType,
    Quote,
    Side,
    SubmitOrder,
    SubmitParentOrder,
    TwapParams,
)

D = Decimal


def fill(
    quantity: str,
    price: str,
    *,
    side: Side = Side.BUY,
    commission: str = "0",
    asset: str | None = "USDT",
    xid: str = "x1",
    client_order_id: str = "o-1",
) -> OrderFilled:
    return OrderFilled(
        client_order_id=client_order_id,
        venue="paper",
        venue_order_id="v1",
        execution_id=xid,
        symbol="BTCUSDT",
        side=side,
        last_quantity=D(quantity),
        last_price=D(price),
        commission=D(commission),
        commission_asset=asset,
    )


def buy_order() -> ExecutionQuality:
    """BUY 10 BTCUSDT, arrival = mid of bid 99.90 / ask 100.10 = 100.00.

    Fills: 4 @ 100.05 (fee 0.40 USDT), 6 @ 100.20 (fee 0.006 BTC = 0.006 x 100.20 = 0.6012 USDT).
    Notional 4 x 100.05 + 6 x 100.20 = 400.20 + 601.20 = 1001.40; average 1001.40 / 10 = 100.14.
    Slippage +1 x (100.14 - 100.00) / 100.00 x 10000 = +14 bps (paid more: a cost).
    Shortfall +1 x (1001.40 - 10 x 100.00) + 0.40 + 0.6012 = 1.40 + 1.0012 = 2.4012 USDT.
    Fill ratio 10 / 10 = 1. Arrival at t=1000 ns, first fill at 3000, complete at 8000:
    2000 ns to the first fill, 7000 ns to complete.
    """
    return ExecutionQuality.measure(
        side=Side.BUY,
        requested_quantity=D("10"),
        fills=[
            fill("4", "100.05", commission="0.40", asset="USDT", xid="a"),
            fill("6", "100.20", commission="0.006", asset="BTC", xid="b"),
        ],
        arrival_price=arrival_price(
            Quote(venue="paper", symbol="BTCUSDT", bid=D("99.90"), ask=D("100.10"))
        ),
        arrival_ns=1_000,
        first_fill_ns=3_000,
        completed_ns=8_000,
    )


def sell_order() -> ExecutionQuality:
    """SELL 8 BTCUSDT, arrival 50.00; only 5 filled.

    Fills: 3 @ 50.10 (fee 0.02 USDT), 2 @ 49.90 (fee 0.05 BNB: not convertible, kept apart).
    Notional 150.30 + 99.80 = 250.10; average 250.10 / 5 = 50.02.
    Slippage -1 x (50.02 - 50.00) / 50.00 x 10000 = -4 bps (sold above arrival: an improvement).
    Shortfall -1 x (250.10 - 5 x 50.00) + 0.02 = -0.10 + 0.02 = -0.08 USDT.
    Fill ratio 5 / 8 = 0.625. Not complete: no time to complete.
    """
    return ExecutionQuality.measure(
        side=Side.SELL,
        requested_quantity=D("8"),
        fills=[
            fill("3", "50.10", side=Side.SELL, commission="0.02", xid="c"),
            fill("2", "49.90", side=Side.SELL, commission="0.05", asset="BNB", xid="d"),
        ],
        arrival_price=D("50.00"),
        arrival_ns=0,
        first_fill_ns=500,
        completed_ns=None,
    )


def test_a_buy_filled_above_arrival_costs_what_the_hand_computation_says() -> None:
    quality = buy_order()
    assert quality.arrival_price == D("100.00")
    assert quality.filled_quantity == D("10")
    assert quality.average_price == D("100.14")
    assert quality.slippage_bps == D("14")
    assert quality.fees == D("1.0012")
    assert quality.implementation_shortfall == D("2.4012")
    assert quality.unconverted_fees == {}
    assert quality.fill_ratio == 1
    assert quality.time_to_first_fill_ns == 2_000
    assert quality.time_to_complete_ns == 7_000
    assert quality.fill_count == 2


def test_a_sell_filled_above_arrival_is_a_negative_slippage_and_unknown_fees_stay_apart() -> None:
    quality = sell_order()
    assert quality.average_price == D("50.02")
    assert quality.slippage_bps == D("-4")
    assert quality.implementation_shortfall == D("-0.08")
    assert quality.fees == D("0.02")
    assert quality.unconverted_fees == {"BNB": D("0.05")}
    assert quality.fill_ratio == D("0.625")
    assert quality.time_to_first_fill_ns == 500
    assert quality.time_to_complete_ns is None


def test_totals_weight_slippage_by_notional_and_sum_the_rest() -> None:
    """Notional 1001.40 + 250.10 = 1251.50; weighted slippage
    (14 x 1001.40 + (-4) x 250.10) / 1251.50 = (14019.6 - 1000.4) / 1251.5 = 13019.2 / 1251.5.
    Shortfall 2.4012 - 0.08 = 2.3212; fees 1.0012 + 0.02 = 1.0212; fill ratio 15 / 18;
    mean time to first fill (2000 + 500) / 2 = 1250; to complete 7000 (one order).
    """
    totals = ExecutionQualityTotals.of([buy_order(), sell_order()])
    assert totals.orders == 2 and totals.measured == 2
    assert totals.filled_notional == D("1251.50")
    assert totals.slippage_bps is not None
    assert abs(Fraction(totals.slippage_bps) - Fraction(130192, 12515)) < Fraction(1, 10**29)
    assert totals.implementation_shortfall == D("2.3212")
    assert totals.fees == D("1.0212")
    assert totals.unconverted_fees == {"BNB": D("0.05")}
    assert totals.fill_ratio is not None
    assert abs(Fraction(totals.fill_ratio) - Fraction(15, 18)) < Fraction(1, 10**30)
    assert totals.mean_time_to_first_fill_ns == 1_250
    assert totals.mean_time_to_complete_ns == 7_000
    metrics = totals.metrics()
    assert metrics["execution_shortfall"] == D("2.3212")
    assert metrics["execution_orders"] == 2
    assert D(totals.to_dict()["implementation_shortfall"]) == D("2.3212")


def test_without_an_arrival_price_there_is_no_slippage_but_the_fees_still_count() -> None:
    quality = ExecutionQuality.measure(
        side=Side.BUY,
        requested_quantity=D("2"),
        fills=[fill("1", "10", commission="0.01")],
        arrival_price=None,
    )
    assert quality.slippage_bps is None and quality.implementation_shortfall is None
    assert quality.fees == D("0.01") and quality.fill_ratio == D("0.5")
    assert quality.time_to_first_fill_ns is None
    totals = ExecutionQualityTotals.of([quality])
    assert totals.measured == 0 and totals.slippage_bps is None
    assert totals.implementation_shortfall == 0


def test_an_order_without_fills_has_no_average_and_a_zero_fill_ratio() -> None:
    quality = ExecutionQuality.measure(
        side=Side.SELL, requested_quantity=D("1"), fills=[], arrival_price=D("5")
    )
    assert quality.average_price is None and quality.slippage_bps is None
    assert quality.fill_ratio == 0 and quality.fill_count == 0
    assert quality.to_dict()["average_price"] is None


@pytest.mark.parametrize(
    ("requested", "arrival"), [(D("0"), None), (D("-1"), None), (D("1"), D("0")), (1, None)]
)
def test_bad_inputs_are_refused_with_the_field_named(requested: object, arrival: object) -> None:
    with pytest.raises(ValueError, match="ExecutionQuality"):
        ExecutionQuality.measure(
            side=Side.BUY,
            requested_quantity=requested,  # type: ignore[arg-type]
            fills=[],
            arrival_price=arrival,  # type: ignore[arg-type]
        )


def test_commissions_are_read_in_the_quote_currency_by_their_asset() -> None:
    assert fee_in_quote(fill("1", "200", commission="0.5", asset="USDT")) == (D("0.5"), None)
    assert fee_in_quote(fill("1", "200", commission="0.001", asset="BTC")) == (D("0.200"), None)
    assert fee_in_quote(fill("1", "200", commission="0.3", asset=None)) == (D("0.3"), None)
    assert fee_in_quote(fill("1", "200", commission="0.1", asset="BNB")) == (None, "BNB")
    assert fee_in_quote(fill("1", "200", commission="-0.2", asset="USDT")) == (D("-0.2"), None)


def test_the_arrival_book_keeps_the_first_arrival_and_completion_and_round_trips() -> None:
    book = ArrivalBook()
    book.set_arrival("o-1", D("100.5"))
    book.set_arrival("o-1", D("999"))
    book.complete("o-1", 40)
    book.complete("o-1", 50)
    book.complete("o-2", 7)
    book.inherit("o-3", "o-1")
    assert book.arrival_price("o-1") == D("100.5") and book.completed_ns("o-1") == 40
    assert book.arrival_price("o-2") is None and book.completed_ns("o-2") == 7
    assert book.arrival_price("o-3") == D("100.5") and book.completed_ns("o-3") is None
    again = ArrivalBook.from_plain(book.to_plain())
    assert again.to_plain() == book.to_plain()
    book.forget("o-1")
    assert "o-1" not in book and len(book) == 2
    with pytest.raises(ValueError, match="price"):
        book.set_arrival("o-4", D("0"))


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("x", "expected a list"),
        ([["o-1", "1"]], "expected"),
        ([["o 1", "1", None]], "client_order_id|arrivals"),
        ([["o-1", "abc", None]], "price"),
        ([["o-1", "-1", None]], "price"),
        ([["o-1", 1, None]], "price"),
        ([["o-1", None, -5]], "completed_ns"),
        ([["o-1", None, "5"]], "completed_ns"),
    ],
)
def test_a_damaged_arrival_book_is_refused_naming_the_row(rows: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ArrivalBook.from_plain(rows)


def _order(client_order_id: str, quantity: str = "2") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=client_order_id,
        strategy_id="s1",
        venue="paper",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D(quantity),
    )


def test_the_oms_state_measures_an_order_from_its_arrival_and_fills_and_keeps_it_in_snapshots() -> (
    None
):
    """BUY 2 registered at t=100 with arrival 50.00; fills 1 @ 50.10 at t=300 and 1 @ 50.30 at
    t=900 (fee 0.05 USDT each). Average 50.20; slippage (50.20 - 50) / 50 x 10000 = 40 bps;
    shortfall (100.40 - 100.00) + 0.10 = 0.50; first fill 200 ns, complete 800 ns after arrival.
    """
    state = OmsState()
    state.register(_order("o-1"), 100)
    state.set_arrival("o-1", D("50.00"))
    state.set_arrival("unknown-1", D("1"))
    assert "unknown-1" not in state.arrivals
    state.mark_submitted("o-1", 100)
    state.apply(fill("1", "50.10", commission="0.05", xid="e1"), 300)
    state.apply(fill("1", "50.30", commission="0.05", xid="e2"), 900)
    quality = order_quality(state, "o-1")
    assert quality is not None
    assert quality.average_price == D("50.20") and quality.slippage_bps == D("40")
    assert quality.implementation_shortfall == D("0.50")
    assert (quality.time_to_first_fill_ns, quality.time_to_complete_ns) == (200, 800)
    restored = OmsState.restore(state.snapshot())
    assert order_quality(restored, "o-1") == quality
    # A snapshot from before arrivals were kept restores with none.
    plain = state.snapshot()
    del plain["arrivals"]
    assert len(OmsState.restore(plain).arrivals) == 0
    assert order_quality(state, "nope") is None


def test_a_forgotten_order_leaves_the_arrival_book_with_it() -> None:
    state = OmsState(completed_capacity=1)
    for number in (1, 2):
        cid = f"o-{number}"
        state.register(_order(cid, "1"), number)
        state.set_arrival(cid, D("10"))
        state.mark_submitted(cid, number)
        state.apply(fill("1", "10", xid=f"f{number}", client_order_id=cid), number)
    assert state.get("o-1") is None
    assert state.arrivals.client_order_ids() == ("o-2",)


def recount(state: OmsState) -> ExecutionQualityTotals:
    found = (order_quality(state, cid) for cid in state.arrivals.client_order_ids())
    return ExecutionQualityTotals.of(quality for quality in found if quality is not None)


def test_the_tracker_keeps_the_totals_of_a_full_recount_recomputing_only_what_changed() -> None:
    """Orders come, fill in parts, complete and are forgotten (capacity 2); after every step
    the tracker's running totals equal a recount of every retained order from scratch."""
    state = OmsState(completed_capacity=2)
    tracker = QualityTracker()
    assert tracker.latest is None
    steps = 0
    for number in range(1, 6):
        cid = f"o-{number}"
        state.register(_order(cid, "2"), number * 10)
        state.set_arrival(cid, D(100 + number))
        state.mark_submitted(cid, number * 10)
        assert tracker.refresh(state) == recount(state)
        for part, price in enumerate(("100.5", "99.25")):
            state.apply(
                fill("1", price, commission="0.1", xid=f"{cid}-{part}", client_order_id=cid),
                number * 10 + part + 1,
            )
            assert tracker.refresh(state) == recount(state)
            steps += 1
    assert steps == 10 and len(state.arrivals) == 2
    assert tracker.latest == recount(state) and tracker.latest.orders == 2
    assert state.arrivals.take_changed() == (False, frozenset())
    report = quality_report(state, tracker=tracker, limit=1)
    assert list(report["orders"]) == ["o-5"]
    assert report == quality_report(state, limit=1)
    assert report == quality_report(state, limit=1, totals=tracker.latest)
    # A restored state is all new to a tracker.
    restored = OmsState.restore(state.snapshot())
    assert QualityTracker().refresh(restored) == tracker.latest


def test_a_book_nobody_reads_stops_listing_changes_and_says_everything_changed() -> None:
    book = ArrivalBook()
    assert book.take_changed() == (True, frozenset())
    for number in range(1100):
        book.complete(f"o-{number}", number)
    everything, _ = book.take_changed()
    assert not everything
    # Forgetting all of them lists more changes than twice the book plus 1024.
    for number in range(1100):
        book.forget(f"o-{number}")
    assert book.take_changed() == (True, frozenset())


def test_a_parents_arrival_is_kept_apart_from_its_orders_and_forgotten_with_it() -> None:
    """A parent BUY 2 accepted at t=10 with arrival 50.00; its child o-p-1 (arrival 50.50) fills
    1 @ 50.20 and 1 @ 50.40 (no fees) at t=30 and t=70. The parent's figures: average 50.30,
    slippage (50.30 - 50.00) / 50.00 x 10000 = 60 bps, shortfall 2 x 0.30 = 0.60, first fill
    20 ns after the accept; the child's own slippage is against 50.50: -4000/101 bps."""
    state = OmsState()
    state.register_parent(
        SubmitParentOrder(
            parent_id="p",
            strategy_id="s1",
            venue="paper",
            symbol="BTCUSDT",
            side=Side.BUY,
            quantity=D("2"),
            algorithm=TwapParams(duration=10.0, slices=1),
        ),
        10,
    )
    state.set_arrival("p", D("50.00"))
    child = replace(_order("p-1"), parent_id="p")
    state.register(child, 20)
    state.set_arrival("p-1", D("50.50"))
    state.mark_submitted("p-1", 20)
    state.apply(fill("1", "50.20", xid="c1", client_order_id="p-1"), 30)
    state.apply(fill("1", "50.40", xid="c2", client_order_id="p-1"), 70)
    figures = parent_quality(state, "p")
    assert figures is not None
    assert figures.average_price == D("50.30") and figures.slippage_bps == D("60")
    assert figures.implementation_shortfall == D("0.60")
    assert figures.time_to_first_fill_ns == 20
    own = order_quality(state, "p-1")
    assert own is not None and own.slippage_bps is not None
    # (50.30 - 50.50) / 50.50 x 10000 = -4000/101 bps
    assert abs(Fraction(own.slippage_bps) - Fraction(-4000, 101)) < Fraction(1, 10**29)
    assert parent_quality(state, "nope") is None
    # The parent's arrival is not an order's: the order totals leave it out.
    assert QualityTracker().refresh(state).orders == 1
    assert list(quality_report(state)["parents"]) == ["p"]
    restored = OmsState.restore(state.snapshot())
    assert parent_quality(restored, "p") == figures
    assert restored.arrivals.is_parent("p") and not restored.arrivals.is_parent("p-1")
    book = restored.arrivals
    book.keep_parents({"other"})
    assert book.arrival_price("p") is None and book.arrival_price("p-1") == D("50.50")
