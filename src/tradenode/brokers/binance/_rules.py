"""Binance Spot symbol rules (``exchangeInfo`` filters), enforced before sending.

A pre-trade check here turns what would be a ``-1013 Filter failure`` or a
``-1111 BAD_PRECISION`` round trip into an immediate, explained denial.
Filters follow filters.md: ``PRICE_FILTER`` (price and stopPrice; any bound
of 0 is disabled), ``LOT_SIZE`` (every order's quantity),
``MARKET_LOT_SIZE`` (MARKET quantity), ``NOTIONAL`` and the legacy
``MIN_NOTIONAL`` (price * quantity; market orders use a reference price, and
only when the filter applies to market orders). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation

from ..._exceptions import MalformedPayloadError
from ...messages._enums import DenialCode, OrderType, TimeInForce
from ...messages._messages import SubmitOrder

__all__ = [
    "BINANCE_ORDER_TYPES",
    "FilterViolation",
    "SymbolRules",
    "binance_order_type",
    "check_order",
    "decimal_places",
    "format_decimal",
    "parse_exchange_info",
]

#: Our order type -> Binance ``type`` (LIMIT with ``post_only`` is LIMIT_MAKER).
BINANCE_ORDER_TYPES: Mapping[OrderType, str] = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP_LOSS",
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
    OrderType.MARKET_IF_TOUCHED: "TAKE_PROFIT",
    OrderType.LIMIT_IF_TOUCHED: "TAKE_PROFIT_LIMIT",
}

# Binance types that execute as market orders (no limit price of their own).
_MARKET_EXECUTION = frozenset({"MARKET", "STOP_LOSS", "TAKE_PROFIT"})
_ZERO = Decimal(0)
_BINANCE_TIFS = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})


def binance_order_type(order_type: OrderType, post_only: bool = False) -> str | None:
    """The Binance ``type`` for our order type, or None when Binance Spot has none."""
    if order_type is OrderType.LIMIT and post_only:
        return "LIMIT_MAKER"
    return BINANCE_ORDER_TYPES.get(order_type)


def format_decimal(value: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros: ``1E+1`` -> ``10``,
    ``0.00010000`` -> ``0.0001``, ``-0`` -> ``0``. Never rounds."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"format_decimal({value!r}): needs a finite Decimal")
    if value.is_zero():
        return "0"
    digits = len(value.as_tuple().digits)
    return format(value.normalize(Context(prec=max(digits, 1))), "f")


def decimal_places(value: Decimal) -> int:
    """Digits after the decimal point once trailing zeros are dropped."""
    exponent = value.normalize(Context(prec=max(len(value.as_tuple().digits), 1))).as_tuple()[2]
    return max(0, -exponent) if isinstance(exponent, int) else 0


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """One symbol's trading rules from ``exchangeInfo``; a 0 bound is disabled."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    base_precision: int
    quote_precision: int
    order_types: frozenset[str]
    cancel_replace_allowed: bool
    tick_size: Decimal = _ZERO
    min_price: Decimal = _ZERO
    max_price: Decimal = _ZERO
    step_size: Decimal = _ZERO
    min_qty: Decimal = _ZERO
    max_qty: Decimal = _ZERO
    market_step_size: Decimal = _ZERO
    market_min_qty: Decimal = _ZERO
    market_max_qty: Decimal = _ZERO
    min_notional: Decimal = _ZERO
    apply_min_to_market: bool = False
    max_notional: Decimal = _ZERO
    apply_max_to_market: bool = False


@dataclass(frozen=True, slots=True)
class FilterViolation:
    """Why an order would fail a Binance filter; ``filter`` names it as Binance does."""

    filter: str
    reason: str
    denial: DenialCode


# -- exchangeInfo -------------------------------------------------------------------------


def _fail(broker: str, what: str) -> MalformedPayloadError:
    return MalformedPayloadError(f"exchangeInfo: {what}", broker=broker)


def _get(obj: Mapping[str, object], key: str, kind: type, broker: str, where: str) -> object:
    if key not in obj:
        raise _fail(broker, f"{where}: missing {key!r}")
    value = obj[key]
    if kind is int and isinstance(value, bool):
        raise _fail(broker, f"{where}.{key}={value!r}: expected an integer")
    if not isinstance(value, kind):
        raise _fail(broker, f"{where}.{key}={value!r}: expected {kind.__name__}")
    return value


def _dec(obj: Mapping[str, object], key: str, broker: str, where: str) -> Decimal:
    raw = _get(obj, key, str, broker, where)
    assert isinstance(raw, str)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _fail(broker, f"{where}.{key}={raw!r}: not a decimal") from None
    if not value.is_finite() or value < 0:
        raise _fail(broker, f"{where}.{key}={raw!r}: must be a finite, non-negative decimal")
    return value


def _flag(obj: Mapping[str, object], key: str, broker: str, where: str) -> bool:
    value = _get(obj, key, bool, broker, where)
    assert isinstance(value, bool)
    return value


def _parse_symbol(entry: object, broker: str) -> SymbolRules:
    if not isinstance(entry, dict):
        raise _fail(broker, f"symbol entry {entry!r} is not an object")
    name = _get(entry, "symbol", str, broker, "symbol")
    assert isinstance(name, str)
    where = f"symbols[{name}]"
    order_types = _get(entry, "orderTypes", list, broker, where)
    assert isinstance(order_types, list)
    if not all(isinstance(kind, str) for kind in order_types):
        raise _fail(broker, f"{where}.orderTypes={order_types!r}: expected strings")
    quote_key = "quoteAssetPrecision" if "quoteAssetPrecision" in entry else "quotePrecision"
    filters = _get(entry, "filters", list, broker, where)
    assert isinstance(filters, list)
    values: dict[str, object] = {}
    notional_seen = False
    for item in filters:
        if not isinstance(item, dict) or not isinstance(item.get("filterType"), str):
            raise _fail(broker, f"{where}: filter {item!r} has no filterType")
        kind = item["filterType"]
        at = f"{where}.{kind}"
        if kind == "PRICE_FILTER":
            values["min_price"] = _dec(item, "minPrice", broker, at)
            values["max_price"] = _dec(item, "maxPrice", broker, at)
            values["tick_size"] = _dec(item, "tickSize", broker, at)
        elif kind == "LOT_SIZE":
            values["min_qty"] = _dec(item, "minQty", broker, at)
            values["max_qty"] = _dec(item, "maxQty", broker, at)
            values["step_size"] = _dec(item, "stepSize", broker, at)
        elif kind == "MARKET_LOT_SIZE":
            values["market_min_qty"] = _dec(item, "minQty", broker, at)
            values["market_max_qty"] = _dec(item, "maxQty", broker, at)
            values["market_step_size"] = _dec(item, "stepSize", broker, at)
        elif kind == "NOTIONAL":
            notional_seen = True
            values["min_notional"] = _dec(item, "minNotional", broker, at)
            values["apply_min_to_market"] = _flag(item, "applyMinToMarket", broker, at)
            values["max_notional"] = _dec(item, "maxNotional", broker, at)
            values["apply_max_to_market"] = _flag(item, "applyMaxToMarket", broker, at)
        elif kind == "MIN_NOTIONAL" and not notional_seen:
            # Legacy filter: only a minimum; the NOTIONAL filter wins when both appear.
            values["min_notional"] = _dec(item, "minNotional", broker, at)
            values["apply_min_to_market"] = _flag(item, "applyToMarket", broker, at)
    status = _get(entry, "status", str, broker, where)
    base_asset = _get(entry, "baseAsset", str, broker, where)
    quote_asset = _get(entry, "quoteAsset", str, broker, where)
    base_precision = _get(entry, "baseAssetPrecision", int, broker, where)
    quote_precision = _get(entry, quote_key, int, broker, where)
    cancel_replace = entry.get("cancelReplaceAllowed", False)
    if not isinstance(cancel_replace, bool):
        raise _fail(broker, f"{where}.cancelReplaceAllowed={cancel_replace!r}: expected bool")
    assert isinstance(status, str) and isinstance(base_asset, str)
    assert isinstance(quote_asset, str)
    assert isinstance(base_precision, int) and isinstance(quote_precision, int)
    return SymbolRules(
        symbol=name,
        status=status,
        base_asset=base_asset,
        quote_asset=quote_asset,
        base_precision=base_precision,
        quote_precision=quote_precision,
        order_types=frozenset(order_types),
        cancel_replace_allowed=cancel_replace,
        **values,  # type: ignore[arg-type]
    )


def parse_exchange_info(payload: object, *, broker: str) -> dict[str, SymbolRules]:
    """``GET /api/v3/exchangeInfo`` (or the ``exchangeInfo`` WS result) as rules by symbol."""
    if not isinstance(payload, dict):
        raise _fail(broker, f"expected an object, got {type(payload).__name__}")
    symbols = payload.get("symbols")
    if not isinstance(symbols, list):
        raise _fail(broker, "missing 'symbols' list")
    rules = (_parse_symbol(entry, broker) for entry in symbols)
    return {rule.symbol: rule for rule in rules}


# -- pre-trade checks ---------------------------------------------------------------------


def _check_price(rules: SymbolRules, field: str, price: Decimal) -> FilterViolation | None:
    if rules.min_price and price < rules.min_price:
        return FilterViolation(
            "PRICE_FILTER",
            f"{field} {price} is below minPrice {rules.min_price}",
            DenialCode.INVALID_ORDER,
        )
    if rules.max_price and price > rules.max_price:
        return FilterViolation(
            "PRICE_FILTER",
            f"{field} {price} is above maxPrice {rules.max_price}",
            DenialCode.INVALID_ORDER,
        )
    if rules.tick_size and price % rules.tick_size != 0:
        return FilterViolation(
            "PRICE_FILTER",
            f"{field} {price} is not a multiple of tickSize {format_decimal(rules.tick_size)}",
            DenialCode.TICK_SIZE,
        )
    if decimal_places(price) > rules.quote_precision:
        return FilterViolation(
            "PRECISION",
            f"{field} {price} has more than {rules.quote_precision} decimals",
            DenialCode.TICK_SIZE,
        )
    return None


def _check_lot(
    name: str, quantity: Decimal, minimum: Decimal, maximum: Decimal, step: Decimal
) -> FilterViolation | None:
    if minimum and quantity < minimum:
        return FilterViolation(
            name, f"quantity {quantity} is below minQty {minimum}", DenialCode.LOT_SIZE
        )
    if maximum and quantity > maximum:
        return FilterViolation(
            name, f"quantity {quantity} is above maxQty {maximum}", DenialCode.LOT_SIZE
        )
    if step and quantity % step != 0:
        return FilterViolation(
            name,
            f"quantity {quantity} is not a multiple of stepSize {format_decimal(step)}",
            DenialCode.LOT_SIZE,
        )
    return None


def _check_notional(
    rules: SymbolRules, order: SubmitOrder, kind: str, reference_price: Decimal | None
) -> FilterViolation | None:
    name = "NOTIONAL"
    market = kind in _MARKET_EXECUTION
    if market:
        if reference_price is None:
            return None  # Binance uses its average price; without one we cannot tell.
        price = reference_price
        check_min = rules.apply_min_to_market
        check_max = rules.apply_max_to_market
    else:
        assert order.price is not None
        price = order.price
        check_min = check_max = True
    notional = price * order.quantity
    if check_min and rules.min_notional and notional < rules.min_notional:
        return FilterViolation(
            name,
            f"notional {notional} ({order.quantity} x {price}) is below minNotional "
            f"{rules.min_notional}",
            DenialCode.MIN_NOTIONAL,
        )
    if check_max and rules.max_notional and notional > rules.max_notional:
        return FilterViolation(
            name,
            f"notional {notional} ({order.quantity} x {price}) is above maxNotional "
            f"{rules.max_notional}",
            DenialCode.MAX_ORDER_NOTIONAL,
        )
    return None


def check_order(
    rules: SymbolRules, order: SubmitOrder, reference_price: Decimal | None
) -> FilterViolation | None:
    """The first Binance rule ``order`` would break, or None if it passes them all.

    ``reference_price`` (e.g. the last or mid price) stands in for Binance's
    average price on orders that execute at market; without it their
    notional is not checked.
    """
    if order.symbol != rules.symbol:
        return FilterViolation(
            "SYMBOL",
            f"order is for {order.symbol}, rules are for {rules.symbol}",
            DenialCode.UNKNOWN_INSTRUMENT,
        )
    if rules.status != "TRADING":
        return FilterViolation(
            "STATUS", f"{rules.symbol} is {rules.status}, not TRADING", DenialCode.TRADING_HALTED
        )
    kind = binance_order_type(order.order_type, order.post_only)
    if kind is None:
        return FilterViolation(
            "ORDER_TYPES",
            f"{order.order_type.value} orders are not supported on Binance Spot",
            DenialCode.INVALID_ORDER,
        )
    if order.time_in_force not in _BINANCE_TIFS:
        return FilterViolation(
            "TIME_IN_FORCE",
            f"time in force {order.time_in_force.value} does not exist on Binance Spot "
            "(GTC, IOC, FOK only)",
            DenialCode.INVALID_ORDER,
        )
    if order.reduce_only:
        return FilterViolation(
            "REDUCE_ONLY",
            "reduce-only orders do not exist on Binance Spot",
            DenialCode.INVALID_ORDER,
        )
    if kind not in rules.order_types:
        return FilterViolation(
            "ORDER_TYPES",
            f"{kind} orders are not allowed on {rules.symbol} "
            f"(allowed: {', '.join(sorted(rules.order_types))})",
            DenialCode.INVALID_ORDER,
        )
    for field, price in (("price", order.price), ("stopPrice", order.stop_price)):
        if price is not None:
            violation = _check_price(rules, field, price)
            if violation is not None:
                return violation
    violation = _check_lot(
        "LOT_SIZE", order.quantity, rules.min_qty, rules.max_qty, rules.step_size
    )
    if violation is None and kind == "MARKET":
        violation = _check_lot(
            "MARKET_LOT_SIZE",
            order.quantity,
            rules.market_min_qty,
            rules.market_max_qty,
            rules.market_step_size,
        )
    if violation is None and decimal_places(order.quantity) > rules.base_precision:
        violation = FilterViolation(
            "PRECISION",
            f"quantity {order.quantity} has more than {rules.base_precision} decimals",
            DenialCode.LOT_SIZE,
        )
    if violation is not None:
        return violation
    return _check_notional(rules, order, kind, reference_price)
