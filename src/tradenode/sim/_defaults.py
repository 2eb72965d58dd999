"""A simulated venue's default instruments and settings: the paper venue's and the fakes'."""

from __future__ import annotations

from decimal import Decimal

from ._config import InstrumentSpec, SimConfig

__all__ = ["default_instruments", "paper_sim_config"]


def default_instruments() -> tuple[InstrumentSpec, ...]:
    return (
        InstrumentSpec(
            symbol="BTCUSDT",
            base_asset="BTC",
            quote_asset="USDT",
            initial_price=Decimal("50000.00"),
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.0001"),
            min_quantity=Decimal("0.0001"),
            min_notional=Decimal("5"),
            spread_bps=Decimal("2"),
            volatility_bps=Decimal("5"),
            level_quantity=Decimal("0.5"),
        ),
        InstrumentSpec(
            symbol="ETHUSDT",
            base_asset="ETH",
            quote_asset="USDT",
            initial_price=Decimal("3000.00"),
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.001"),
            min_quantity=Decimal("0.001"),
            min_notional=Decimal("5"),
            spread_bps=Decimal("2"),
            volatility_bps=Decimal("8"),
            level_quantity=Decimal("5"),
        ),
        InstrumentSpec(
            symbol="SOLUSDT",
            base_asset="SOL",
            quote_asset="USDT",
            initial_price=Decimal("150.00"),
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.01"),
            min_quantity=Decimal("0.01"),
            min_notional=Decimal("5"),
            spread_bps=Decimal("4"),
            volatility_bps=Decimal("12"),
            level_quantity=Decimal("50"),
        ),
    )


def paper_sim_config(
    *,
    quote_balance: Decimal = Decimal("1000000"),
    fill_probability: float = 1.0,
    allow_short: bool = True,
    taker_commission_bps: Decimal = Decimal("10"),
    maker_commission_bps: Decimal = Decimal("2"),
    slippage_bps: Decimal = Decimal("0"),
    retain_closed_orders: int | None = 10_000,
) -> SimConfig:
    instruments = default_instruments()
    balances = {"USDT": quote_balance}
    balances.update({spec.base_asset: Decimal(0) for spec in instruments})
    return SimConfig(
        instruments=instruments,
        balances=balances,
        depth_levels=5,
        level_spacing_bps=Decimal("5"),
        slippage_bps=slippage_bps,
        maker_commission_bps=maker_commission_bps,
        taker_commission_bps=taker_commission_bps,
        fill_probability=fill_probability,
        allow_short=allow_short,
        retain_closed_orders=retain_closed_orders,
    )
