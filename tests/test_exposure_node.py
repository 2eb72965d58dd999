"""On a running node with two paper venues: a position split across the venues that list one
instrument is limited by its sum, and the OMS reports it per instrument with each venue's part."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tradenode.actors import Exposure, GetExposure
from tradenode.brokers.paper import PaperVenue
from tradenode.messages import DenialCode, OrderDenied, OrderStatus, Side
from tradenode.supervision import ManualClock

from ._node_helpers import Harness, running_node

D = Decimal

INSTRUMENTS = "instruments: {BTC-USD: {venues: {paper: BTCUSDT, paper2: BTCUSDT}}}\n"


def priced(h: Harness) -> None:
    """Both venues at 50000.00 (paper's 2 bps spread: market buys fill at 50005.00)."""
    for name in ("paper", "paper2"):
        venue = h.node.venues[name]
        assert isinstance(venue, PaperVenue)
        venue.set_price("BTCUSDT", D("50000"))
    h.sync()


def buy(h: Harness, venue: str, quantity: str) -> str:
    coid: str = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D(quantity), venue=venue))
    return coid


def test_a_position_split_across_two_venues_is_limited_by_its_sum() -> None:
    """max_position_quantity 1: 0.6 on paper fills, then 0.6 on paper2 would make 1.2 across
    the instrument: denied MAX_POSITION (alone on paper2 it would be 0.6, within the limit);
    0.4 on paper2 fills and makes exactly 1."""
    with running_node(INSTRUMENTS + "risk: {max_position_quantity: '1'}\n") as h:
        priced(h)
        first = buy(h, "paper", "0.6")
        h.wait_status(first, OrderStatus.FILLED)
        h.sync()
        second = buy(h, "paper2", "0.6")
        denial = h.wait_for(OrderDenied, second)[0]
        assert denial.code is DenialCode.MAX_POSITION
        assert "BTC-USD across its venues to 1.2" in denial.reason
        third = buy(h, "paper2", "0.4")
        h.wait_status(third, OrderStatus.FILLED)
        h.sync()
        assert (h.position("BTCUSDT", "paper"), h.position("BTCUSDT", "paper2")) == (
            D("0.6"),
            D("0.4"),
        )
        exposure = h.node.oms.ask(GetExposure())
        assert isinstance(exposure, Exposure)
        btc = exposure.get("BTC-USD")
        assert btc is not None and btc.quantity == D("1.0")
        assert [(part.venue, part.quantity) for part in btc.venues] == [
            ("paper", D("0.6")),
            ("paper2", D("0.4")),
        ]
        assert h.node.status()["exposure"]["BTC-USD"]["quantity"] == "1.0"


def test_max_position_pct_limits_the_instruments_value_across_venues() -> None:
    """capital 100000, max_position_pct 0.5: the instrument may be worth 50000. 0.5 BTC bought
    on paper at 50005.00 pays 25.0025 taker fee; at the mark (last 50000.00) it is worth
    25000, unrealized PnL -2.5 (fees are not in the position's PnL). Equity 100000 - 2.5 =
    99997.5, half of it 49998.75. Buying 0.5 more on paper2 values the instrument at
    (0.5 + 0.5) x 50000 = 50000 > 49998.75: denied; 0.49 (49500) is approved."""
    risk = "risk: {max_position_pct: '0.5', capital: '100000'}\n"
    with running_node(INSTRUMENTS + risk) as h:
        priced(h)
        first = buy(h, "paper", "0.5")
        h.wait_status(first, OrderStatus.FILLED)
        h.sync()
        second = buy(h, "paper2", "0.5")
        denial = h.wait_for(OrderDenied, second)[0]
        assert denial.code is DenialCode.MAX_POSITION
        assert "BTC-USD to a value of 50000" in denial.reason
        assert "equity 99997.5" in denial.reason
        assert "beyond max_position_pct 0.5" in denial.reason
        third = buy(h, "paper2", "0.49")
        h.wait_status(third, OrderStatus.FILLED)


def test_a_restarted_node_still_limits_the_sum_it_recovered_from_its_journal(
    tmp_path: Path,
) -> None:
    """0.6 on paper and 0.4 on paper2 fill (the limit of 1 reached across the instrument);
    a new node on the same journal recovers both positions and denies 0.1 more on either
    venue: a restart never grants a fresh budget across venues."""
    extra = (
        INSTRUMENTS
        + "risk: {max_position_quantity: '1'}\n"
        + f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record}}\n"
    )
    clock = ManualClock()
    with running_node(extra, clock=clock) as h:
        priced(h)
        for venue, quantity in (("paper", "0.6"), ("paper2", "0.4")):
            h.wait_status(buy(h, venue, quantity), OrderStatus.FILLED)
        h.sync()
    with running_node(extra, clock=clock) as again:
        priced(again)
        for venue in ("paper", "paper2"):
            denial = again.wait_for(OrderDenied, buy(again, venue, "0.1"))[0]
            assert denial.code is DenialCode.MAX_POSITION
            assert "across its venues to 1.1" in denial.reason
