"""Positions per instrument across venues, and the risk limits that use the sum."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradenode import ConfigError, parse_config

# The instrument map is the config's (routing's) own, not exported (yet).
from tradenode._execution_config import InstrumentConfig, InstrumentMap
from tradenode.actors import Exposure

# The listing helpers and the risk engine (its limits, context and rules) are internal.
from tradenode.actors._exposure import instrument_keys, instrument_name
from tradenode.actors._risk import risk_limits_from_config
from tradenode.actors._risk_limits import OpenOrders, RiskContext, RiskLimits
from tradenode.actors._risk_rules import RiskEngine
from tradenode.messages import DenialCode, OrderType, PositionSnapshot, Side, SubmitOrder

D = Decimal

LISTINGS = InstrumentMap(
    {
        "BTC-USD": InstrumentConfig(venues={"paper": "BTCUSDT", "paper2": "BTC-USD"}),
        "ETH-USD": InstrumentConfig(venues={"paper": "ETHUSDT"}),
    }
)


def snapshot(
    venue: str, symbol: str, quantity: str, strategy: str | None = None
) -> PositionSnapshot:
    return PositionSnapshot(
        venue=venue,
        symbol=symbol,
        strategy_id=strategy,
        quantity=D(quantity),
        avg_price=D("100"),
        realized_pnl=D("1"),
        unrealized_pnl=D("2"),
    )


def order(
    venue: str, symbol: str, side: Side, quantity: str, price: str | None = None
) -> SubmitOrder:
    return SubmitOrder(
        client_order_id="o-1",
        strategy_id="s1",
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=D(quantity),
        price=None if price is None else D(price),
    )


def test_an_instrument_sums_its_venues_and_unlisted_symbols_stay_apart() -> None:
    """BTC-USD: paper +0.5 at 50000 (25000), paper2 -0.2 at 50100 (-10020): quantity 0.3,
    value 14980, gross 35020. paper2's ETHUSDT is not listed: its own instrument."""
    exposure = Exposure.build(
        [
            snapshot("paper", "BTCUSDT", "0.5"),
            snapshot("paper2", "BTC-USD", "-0.2"),
            snapshot("paper", "BTCUSDT", "0.5", strategy="s1"),
            snapshot("paper2", "ETHUSDT", "3"),
            snapshot("paper", "ETHUSDT", "0"),
        ],
        listings=LISTINGS,
        marks={
            ("paper", "BTCUSDT"): D("50000"),
            ("paper2", "BTC-USD"): D("50100"),
        },
    )
    assert [item.instrument for item in exposure.instruments] == [
        "BTC-USD",
        "ETH-USD",
        "paper2:ETHUSDT",
    ]
    btc = exposure.get("BTC-USD")
    assert btc is not None and btc.listed
    assert btc.quantity == D("0.3")
    assert btc.value == D("14980") and btc.gross_value == D("35020")
    assert [(part.venue, part.quantity, part.value) for part in btc.venues] == [
        ("paper", D("0.5"), D("25000")),
        ("paper2", D("-0.2"), D("-10020")),
    ]
    assert btc.fraction_of(D("100000")) == D("0.1498")
    eth = exposure.get("ETH-USD")
    assert eth is not None and eth.value == 0
    unlisted = exposure.get("paper2:ETHUSDT")
    assert unlisted is not None and not unlisted.listed
    assert unlisted.value is None and unlisted.fraction_of(D("1")) is None
    assert exposure.to_dict()["BTC-USD"]["venues"][1]["value"] == "-10020.0"
    assert exposure.get("nope") is None


def test_listing_lookups() -> None:
    assert instrument_name(LISTINGS, "paper2", "BTC-USD") == "BTC-USD"
    assert instrument_name(LISTINGS, "paper2", "BTCUSDT") == "paper2:BTCUSDT"
    assert instrument_name(None, "paper", "BTCUSDT") == "paper:BTCUSDT"
    assert instrument_keys(LISTINGS, "paper2", "BTC-USD") == (
        ("paper2", "BTC-USD"),
        ("paper", "BTCUSDT"),
    )
    assert instrument_keys(LISTINGS, "paper", "SOLUSDT") == (("paper", "SOLUSDT"),)
    assert instrument_keys(None, "paper", "BTCUSDT") == (("paper", "BTCUSDT"),)


def engine(**limits: object) -> RiskEngine:
    return RiskEngine(RiskLimits(listings=LISTINGS, **limits), now_ns=lambda: 1)  # type: ignore[arg-type]


def context(
    paper: str = "0",
    paper2: str = "0",
    *,
    pending2: OpenOrders | None = None,
    pnl: str | None = "0",
) -> RiskContext:
    return RiskContext(
        positions={("paper", "BTCUSDT"): D(paper), ("paper2", "BTC-USD"): D(paper2)},
        open_orders={} if pending2 is None else {("paper2", "BTC-USD"): pending2},
        last_prices={("paper", "BTCUSDT"): D("50000"), ("paper2", "BTC-USD"): D("50000")},
        equity=None if pnl is None else D(pnl),
        peak_equity=None if pnl is None else D(pnl),
    )


def test_max_position_quantity_applies_to_the_sum_across_the_instruments_venues() -> None:
    """Limit 1: paper holds 0.6, paper2 0.3, and 0.05 more rests on paper2. Buying 0.1 on
    paper makes 0.6 + 0.3 + 0.05 + 0.1 = 1.05: denied; 0.05 makes exactly 1: approved."""
    rules = engine(max_position_quantity=D("1"))
    ctx = context("0.6", "0.3", pending2=OpenOrders(D("0.05"), D(0), 1))
    denied = rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.1"), ctx)
    assert denied.code is DenialCode.MAX_POSITION
    assert "BTC-USD across its venues to 1.05" in denied.reason
    assert "positions paper 0.6, paper2 0.3" in denied.reason
    assert rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.05"), ctx).approved
    # Unlisted, the same order on paper alone would have been fine (0.6 + 0.1).
    alone = RiskEngine(RiskLimits(max_position_quantity=D("1")), now_ns=lambda: 1)
    assert alone.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.1"), ctx).approved


def test_an_order_that_reduces_its_venue_but_adds_to_the_instrument_is_not_exempt() -> None:
    """paper long 1.0, paper2 short 0.2: the sum is 0.8. Buying 0.3 on paper2 reduces paper2's
    short but takes the sum to 1.1 > 1: denied. Selling 0.5 on paper2 reduces the sum: exempt
    even with the limit already exceeded."""
    rules = engine(max_position_quantity=D("1"))
    ctx = context("1.0", "-0.2")
    buy = rules.check_submit(order("paper2", "BTC-USD", Side.BUY, "0.3"), ctx)
    assert buy.code is DenialCode.MAX_POSITION
    over = context("1.5", "0")
    assert rules.check_submit(order("paper2", "BTC-USD", Side.SELL, "0.5"), over).approved


def test_max_symbol_exposure_values_each_venue_at_its_own_mark() -> None:
    """paper 0.4 at 50000 = 20000, paper2 0.3 at 50000 = 15000; a buy of 0.2 at limit 50010 on
    paper adds 0.2 x 50000 (the last price is the mark) = 10000: 45000 > 40000 is denied."""
    rules = engine(max_symbol_exposure=D("40000"))
    ctx = context("0.4", "0.3")
    denied = rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.2", "50010"), ctx)
    assert denied.code is DenialCode.MAX_EXPOSURE
    assert "exposure in BTC-USD across its venues to 45000" in denied.reason
    assert rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.1", "50010"), ctx).approved


def test_max_position_pct_is_a_fraction_of_capital_plus_pnl() -> None:
    """Capital 100000, PnL -10000: equity 90000; 20% of it is 18000. paper2 holds 0.3 (15000):
    buying 0.1 on paper makes 0.4 x 50000 = 20000 > 18000, denied; 0.06 makes 18000, approved.
    With PnL unknown, or equity not positive, nothing that adds is approved."""
    rules = engine(max_position_pct=D("0.2"), capital=D("100000"))
    ctx = context("0", "0.3", pnl="-10000")
    denied = rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.1"), ctx)
    assert denied.code is DenialCode.MAX_POSITION
    assert "to a value of 20000" in denied.reason and "equity 90000" in denied.reason
    assert "beyond max_position_pct 0.2" in denied.reason
    assert rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.06"), ctx).approved
    unknown = rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.01"), context(pnl=None))
    assert unknown.code is DenialCode.MAX_POSITION and "equity is unknown" in unknown.reason
    broke = rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.01"), context(pnl="-100000"))
    assert broke.code is DenialCode.MAX_POSITION and "not positive" in broke.reason
    # Reducing the instrument stays possible whatever the equity.
    assert rules.check_submit(
        order("paper2", "BTC-USD", Side.SELL, "0.1"), context("0", "0.3", pnl="-100000")
    ).approved


def test_max_position_pct_on_an_unlisted_symbol_values_it_alone() -> None:
    """SOLUSDT (not listed) at 150: capital 1000 x 0.1 = 100; buying 1 is 150: denied."""
    rules = engine(max_position_pct=D("0.1"), capital=D("1000"))
    ctx = RiskContext(last_prices={("paper", "SOLUSDT"): D("150")}, equity=D(0), peak_equity=D(0))
    denied = rules.check_submit(order("paper", "SOLUSDT", Side.BUY, "1"), ctx)
    assert denied.code is DenialCode.MAX_POSITION and "SOLUSDT to a value of 150" in denied.reason
    assert rules.check_submit(order("paper", "SOLUSDT", Side.BUY, "0.5"), ctx).approved


def test_a_venue_of_the_instrument_without_a_price_refuses_rather_than_guessing() -> None:
    rules = engine(max_symbol_exposure=D("1000000"))
    ctx = RiskContext(
        positions={("paper2", "BTC-USD"): D("0.3")},
        last_prices={("paper", "BTCUSDT"): D("50000")},
    )
    denied = rules.check_submit(order("paper", "BTCUSDT", Side.BUY, "0.1"), ctx)
    assert denied.code is DenialCode.NO_MARKET_PRICE and "BTC-USD at paper2" in denied.reason


def test_the_limits_are_read_from_the_config_and_checked() -> None:
    config = parse_config(
        """
venues: [{name: paper, paper: {}}, {name: paper2, paper: {}}]
instruments: {BTC-USD: {venues: {paper: BTCUSDT, paper2: BTCUSDT}}}
risk: {max_position_pct: "0.25", capital: "200000"}
"""
    )
    limits = risk_limits_from_config(config.risk, listings=InstrumentMap(config.instruments))
    assert (limits.max_position_pct, limits.capital) == (D("0.25"), D("200000"))
    assert limits.listings is not None
    assert limits.listings.instrument_of("paper2", "BTCUSDT") == "BTC-USD"
    with pytest.raises(ConfigError, match="capital"):
        parse_config("risk: {max_position_pct: '0.25'}\n")
    with pytest.raises(ValueError, match="needs capital"):
        RiskLimits(max_position_pct=D("0.1"))
    with pytest.raises(ValueError, match="listings"):
        RiskLimits(listings=object())  # type: ignore[arg-type]
