"""How a node attaches an exchange through ccxt: the ``ccxt`` venue kind."""

from __future__ import annotations

from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
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
        tracked.filled = max(tracked.filled, view.filled_quantity)
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


def build_ccxt(context: VenueContext[CcxtSettings]) -> VenueBuild:
    from ._actor import CcxtBroker, CcxtLink  # noqa: PLC0415 (ccxt loads with the actor)

    settings = context.settings
    name = context.name
    previous = context.previous
    link = previous if isinstance(previous, CcxtLink) else CcxtLink()
    seed_link(link, context.recovered)
    oms = context.reports_to
    return VenueBuild(
        broker=context.broker_spec(
            lambda: CcxtBroker(name, settings=settings, reports_to=oms, link=link)
        ),
        capabilities=ccxt_capabilities(
            settings.exchange,
            exchange_has(settings.exchange),
            settings.options,
            streaming=settings.streaming != "off",
        ),
        runtime=link,
        status=lambda: link_status(link),
    )


CCXT = VenueKind(
    "ccxt",
    settings=CcxtSettings,
    factory=build_ccxt,
    description="any exchange ccxt supports, by its ccxt id (REST, ccxt.pro streams or polling)",
)
