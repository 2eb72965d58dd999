"""How a node attaches an exchange through ccxt: the ``ccxt`` venue kind."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, Increments, LearnedIncrements, places_increment
from ._capabilities import ccxt_capabilities
from ._settings import CcxtSettings, exchange_has

__all__ = ["CCXT", "build_ccxt", "link_status", "seed_link"]


def seed_link(link: Any, recovered: RecoveredVenue) -> None:
    """A new process knows its orders, their venue ids and its trade cursors only
    from the journal: live orders are reported if the venue never heard of them,
    and the sweep starts at each symbol's cursor."""
    from ._actor import CURSOR_PREFIX, TrackedOrder  # noqa: PLC0415 (ccxt loads with the actor)

    for view in recovered.open_orders:
        tracked = link.orders.setdefault(view.client_order_id, TrackedOrder(view.symbol))
        tracked.side = view.order.side
        tracked.quantity = view.order.quantity
        executions = recovered.executions.get(view.client_order_id, ())
        # The count starts at the journal's, and those executions are repeats if a
        # sweep or the stream brings them again (they were told before).
        tracked.filled = max(tracked.filled, view.filled_quantity)
        for execution in executions:
            link.remember(execution)
        if view.venue_order_id:
            tracked.order_id = view.venue_order_id
            link.order_ids[view.venue_order_id] = view.client_order_id
    for view in recovered.live:
        tracked = link.orders[view.client_order_id]
        tracked.report_if_missing = True
        tracked.acknowledged = True
    for scope, cursor in recovered.cursors.items():
        if scope.startswith(CURSOR_PREFIX) and cursor.isdigit():
            symbol = scope.removeprefix(CURSOR_PREFIX)
            link.cursors[symbol] = max(int(cursor), link.cursors.get(symbol, 0))


def link_status(link: Any) -> dict[str, Any]:
    return {
        "connections": link.connections,
        "reconciliations": link.reconciliations,
        "malformed_payloads": link.malformed_payloads,
        "unsettled_orders": len(link.orders),
        "repeated_fills": link.repeats,
        "streaming": link.streaming,
        "polls": link.polls,
        "trade_cursors": dict(sorted(link.cursors.items())),
    }


#: ccxt's ``precisionMode`` values (``ccxt.DECIMAL_PLACES``, ``ccxt.TICK_SIZE``); under
#: ``SIGNIFICANT_DIGITS`` a market's precision is no increment and is left out.
_DECIMAL_PLACES = 2
_TICK_SIZE = 4


def _step(value: object, mode: int) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or number <= 0:
        return None
    if mode == _TICK_SIZE:
        return number
    if mode == _DECIMAL_PLACES and number == number.to_integral_value():
        return places_increment(int(number))
    return None


def _increments(broker: Any) -> Iterator[Increments]:
    """Each configured market's unified ``precision`` (price, amount) as increments."""
    session = broker.session
    if session is None:
        return
    api = session.api
    markets, mode = api.exchange.markets or {}, api.precision_mode
    for symbol in broker.settings.symbols:
        market = markets.get(symbol)
        precision = market.get("precision") if isinstance(market, dict) else None
        if isinstance(precision, dict):
            yield symbol, _step(precision.get("price"), mode), _step(precision.get("amount"), mode)


def build_ccxt(context: VenueContext[CcxtSettings]) -> VenueBuild:
    from ._actor import CcxtBroker, CcxtLink  # noqa: PLC0415 (ccxt loads with the actor)

    settings = context.settings
    name = context.name
    previous = context.previous
    link = previous if isinstance(previous, CcxtLink) else CcxtLink()
    seed_link(link, context.recovered)
    oms = context.reports_to
    learned: LearnedIncrements[Any] = LearnedIncrements(_increments)
    return VenueBuild(
        broker=context.broker_spec(
            learned.watch(lambda: CcxtBroker(name, settings=settings, reports_to=oms, link=link))
        ),
        capabilities=ccxt_capabilities(
            settings.exchange,
            exchange_has(settings.exchange),
            settings.options,
            streaming=settings.streaming != "off",
        ),
        runtime=link,
        status=lambda: {**link_status(link), INSTRUMENTS_KEY: learned.status()},
    )


CCXT = VenueKind(
    "ccxt",
    settings=CcxtSettings,
    factory=build_ccxt,
    description="any exchange ccxt supports, by its ccxt id (REST, ccxt.pro streams or polling)",
)
