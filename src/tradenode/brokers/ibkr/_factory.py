"""How a node attaches a TWS / IB Gateway: the ``ibkr`` venue kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, Increments, LearnedIncrements
from ._actor import CURSOR_SCOPE, IbkrBroker, IbkrLink, TrackedOrder
from ._capabilities import ibkr_capabilities
from ._settings import IbkrSettings

__all__ = ["IBKR", "build_ibkr", "link_status", "seed_link"]


def seed_link(link: IbkrLink, recovered: RecoveredVenue) -> None:
    """A new process knows its orders, their IB order ids and its execution cursor
    only from the journal: the orderId -> client id map is rebuilt from the
    ``venue_order_id`` the OMS journaled with each acceptance, live orders are
    reported if TWS never heard of them, and the replay starts at the cursor."""
    for view in recovered.open_orders:
        tracked = link.orders.setdefault(view.client_order_id, TrackedOrder(view.symbol))
        tracked.side = view.order.side
        tracked.quantity = view.order.quantity
        tracked.filled = max(tracked.filled, view.filled_quantity)
        venue_id = view.venue_order_id
        if venue_id is not None and venue_id.isdigit():
            tracked.order_id = int(venue_id)
            link.client_ids[int(venue_id)] = view.client_order_id
    for view in recovered.live:
        tracked = link.orders[view.client_order_id]
        tracked.report_if_missing = True
        tracked.acknowledged = True
    cursor = recovered.cursors.get(CURSOR_SCOPE)
    if cursor is not None and (link.cursor is None or cursor > link.cursor):
        link.cursor = cursor


def link_status(link: IbkrLink) -> dict[str, Any]:
    return {
        "connections": link.connections,
        "reconciliations": link.reconciliations,
        "malformed_payloads": link.malformed_payloads,
        "unsettled_orders": len(link.orders),
        "execution_cursor": link.cursor,
        "repeated_executions": link.repeats,
        "corrected_executions": link.corrections,
        "pacing_violations": link.pacing_violations,
        "restorations": link.restorations,
        "positions": {k: str(v) for k, v in sorted(link.positions.items())},
    }


def _increments(broker: IbkrBroker) -> Iterator[Increments]:
    """Each qualified contract's ``minTick`` and ``sizeIncrement``."""
    for symbol, instrument in list(broker.instruments.items()):
        yield symbol, instrument.min_tick, instrument.size_increment


def build_ibkr(context: VenueContext[IbkrSettings]) -> VenueBuild:
    settings = context.settings
    name = context.name
    previous = context.previous
    link = previous if isinstance(previous, IbkrLink) else IbkrLink()
    seed_link(link, context.recovered)
    oms = context.reports_to
    learned = LearnedIncrements(_increments)
    return VenueBuild(
        broker=context.broker_spec(
            learned.watch(
                lambda: IbkrBroker(
                    name,
                    host=settings.host,
                    port=settings.port,
                    client_id=settings.client_id,
                    account=settings.account,
                    instruments=dict(settings.instruments),
                    reports_to=oms,
                    link=link,
                    connect_timeout=settings.connect_timeout,
                    request_timeout=settings.request_timeout,
                    message_rate_limit=settings.message_rate_limit,
                    pacing_backoff=settings.pacing_backoff,
                    outside_rth=settings.outside_rth,
                    market_data_type=settings.market_data_type,
                    check_interval=settings.check_interval or None,
                )
            )
        ),
        capabilities=ibkr_capabilities(),
        runtime=link,
        status=lambda: {**link_status(link), INSTRUMENTS_KEY: learned.status()},
    )


IBKR = VenueKind(
    "ibkr",
    settings=IbkrSettings,
    factory=build_ibkr,
    description="Interactive Brokers through TWS or IB Gateway (ib_async), or the local TWS",
)
