"""What the simulated market looks like: instruments and venue-wide settings.

Both classes validate themselves on construction so that a simulator never
holds a configuration it would later trip over mid-match (a zero tick would
only surface as a division error inside ``step``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from tradenode.sim._numbers import BPS, ZERO, is_multiple

__all__ = ["InstrumentSpec", "SimConfig"]


def _require_decimal(owner: object, name: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(
            f"{type(owner).__name__}.{name}={value!r}: must be a finite decimal.Decimal"
        )
    return value


def _require_positive(owner: object, name: str, value: object) -> Decimal:
    number = _require_decimal(owner, name, value)
    if number <= 0:
        raise ValueError(f"{type(owner).__name__}.{name}={value!r}: must be greater than zero")
    return number


def _require_rate(owner: object, name: str, value: object) -> Decimal:
    """Rates at or above 100% would make a fill cost or pay nothing."""
    number = _require_decimal(owner, name, value)
    if not ZERO <= number < BPS:
        raise ValueError(f"{type(owner).__name__}.{name}={value!r}: must be in [0, 10000) bps")
    return number


def _require_name(owner: object, name: str, value: object) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(
            f"{type(owner).__name__}.{name}={value!r}: must be a non-empty string "
            "without surrounding whitespace"
        )
    return value


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One tradable symbol and how its simulated price moves.

    ``price_series``, when given, replaces the random walk: each ``step``
    moves to the next value (rounded half-even to the tick, never below one
    tick) and holds the last one once the series is exhausted. The series is
    rounded rather than rejected so that recorded prices with a finer
    precision than the venue's tick can be replayed unchanged.

    ``level_quantity`` overrides :attr:`SimConfig.level_quantity` for this
    symbol, because one lot of BTC and one lot of DOGE are not comparable.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    initial_price: Decimal
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal
    spread_bps: Decimal
    volatility_bps: Decimal
    price_series: tuple[Decimal, ...] = ()
    level_quantity: Decimal | None = None

    def __post_init__(self) -> None:
        _require_name(self, "symbol", self.symbol)
        _require_name(self, "base_asset", self.base_asset)
        _require_name(self, "quote_asset", self.quote_asset)
        if self.base_asset == self.quote_asset:
            raise ValueError(f"InstrumentSpec {self.symbol}: base and quote asset are the same")
        tick = _require_positive(self, "tick_size", self.tick_size)
        lot = _require_positive(self, "lot_size", self.lot_size)
        price = _require_positive(self, "initial_price", self.initial_price)
        if not is_multiple(price, tick):
            raise ValueError(
                f"InstrumentSpec.initial_price={price}: not a multiple of tick_size {tick}"
            )
        if _require_decimal(self, "min_quantity", self.min_quantity) < 0:
            raise ValueError(f"InstrumentSpec.min_quantity={self.min_quantity}: negative")
        if _require_decimal(self, "min_notional", self.min_notional) < 0:
            raise ValueError(f"InstrumentSpec.min_notional={self.min_notional}: negative")
        _require_rate(self, "spread_bps", self.spread_bps)
        _require_rate(self, "volatility_bps", self.volatility_bps)
        series = tuple(self.price_series)
        for index, value in enumerate(series):
            _require_positive(self, f"price_series[{index}]", value)
        object.__setattr__(self, "price_series", series)
        if self.level_quantity is not None:
            level = _require_positive(self, "level_quantity", self.level_quantity)
            if not is_multiple(level, lot):
                raise ValueError(
                    f"InstrumentSpec.level_quantity={level}: not a multiple of lot_size {lot}"
                )


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Venue-wide settings shared by every instrument.

    ``fill_probability`` only gates *passive* fills of resting orders on
    ``step``/``set_price``; an order that takes liquidity on arrival always
    finds the synthetic book, as it would on a real venue.

    Commission rates apply to the fill's notional and are charged in the quote
    asset (see :class:`~tradenode.sim.MatchingSimulator`), or, with
    ``fee_in_received_asset``, in the asset the fill delivers: a buy pays its
    fee in the base asset it receives, as Binance (without BNB) and OKX spot do.
    """

    instruments: tuple[InstrumentSpec, ...]
    balances: Mapping[str, Decimal] = field(hash=False)
    depth_levels: int = 5
    level_quantity: Decimal = Decimal(1)
    level_spacing_bps: Decimal = Decimal(5)
    slippage_bps: Decimal = ZERO
    maker_commission_bps: Decimal = ZERO
    taker_commission_bps: Decimal = ZERO
    fill_probability: float = 1.0
    allow_short: bool = False
    fee_in_received_asset: bool = False
    """Charge a buy's fee in the base asset it receives (the rate on the fill's
    quantity); a sell's fee is in the quote asset either way."""
    retain_closed_orders: int | None = None
    """How many closed orders (and about as many fills) the venue keeps for
    queries and catch-up; None keeps all (an inspectable test venue). An
    embedded venue that runs for days must bound it."""

    def __post_init__(self) -> None:
        instruments = tuple(self.instruments)
        if not instruments:
            raise ValueError("SimConfig.instruments: at least one instrument is required")
        symbols = [spec.symbol for spec in instruments]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"SimConfig.instruments: duplicate symbols in {symbols}")
        for spec in instruments:
            if not isinstance(spec, InstrumentSpec):
                raise ValueError(f"SimConfig.instruments: {spec!r} is not an InstrumentSpec")
        object.__setattr__(self, "instruments", instruments)
        balances: dict[str, Decimal] = {}
        for asset, amount in dict(self.balances).items():
            _require_name(self, "balances key", asset)
            if _require_decimal(self, f"balances[{asset!r}]", amount) < 0:
                raise ValueError(f"SimConfig.balances[{asset!r}]={amount}: negative")
            balances[asset] = amount
        object.__setattr__(self, "balances", MappingProxyType(balances))
        if (
            isinstance(self.depth_levels, bool)
            or not isinstance(self.depth_levels, int)
            or self.depth_levels < 1
        ):
            raise ValueError(f"SimConfig.depth_levels={self.depth_levels!r}: must be an int >= 1")
        _require_positive(self, "level_quantity", self.level_quantity)
        if _require_decimal(self, "level_spacing_bps", self.level_spacing_bps) < 0:
            raise ValueError(f"SimConfig.level_spacing_bps={self.level_spacing_bps}: negative")
        _require_rate(self, "slippage_bps", self.slippage_bps)
        _require_rate(self, "maker_commission_bps", self.maker_commission_bps)
        _require_rate(self, "taker_commission_bps", self.taker_commission_bps)
        probability = self.fill_probability
        if (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0.0 <= probability <= 1.0
        ):
            raise ValueError(f"SimConfig.fill_probability={probability!r}: must be in [0, 1]")
        if not isinstance(self.allow_short, bool):
            raise ValueError(f"SimConfig.allow_short={self.allow_short!r}: must be a bool")
        if not isinstance(self.fee_in_received_asset, bool):
            raise ValueError(
                f"SimConfig.fee_in_received_asset={self.fee_in_received_asset!r}: must be a bool"
            )
        retain = self.retain_closed_orders
        if retain is not None and (
            isinstance(retain, bool) or not isinstance(retain, int) or retain < 1
        ):
            raise ValueError(
                f"SimConfig.retain_closed_orders={retain!r}: must be None or an int >= 1"
            )
        for spec in instruments:
            if spec.level_quantity is None and not is_multiple(self.level_quantity, spec.lot_size):
                raise ValueError(
                    f"SimConfig.level_quantity={self.level_quantity}: not a multiple of "
                    f"{spec.symbol}'s lot_size {spec.lot_size}"
                )

    def instrument(self, symbol: str) -> InstrumentSpec:
        """Raises ``KeyError`` for a symbol the simulator does not list."""
        for spec in self.instruments:
            if spec.symbol == symbol:
                return spec
        raise KeyError(symbol)

    def level_quantity_for(self, symbol: str) -> Decimal:
        spec = self.instrument(symbol)
        return self.level_quantity if spec.level_quantity is None else spec.level_quantity

    @property
    def max_commission_bps(self) -> Decimal:
        """A resting buy may fill as maker or taker, so it reserves the dearer rate."""
        return max(self.maker_commission_bps, self.taker_commission_bps)
