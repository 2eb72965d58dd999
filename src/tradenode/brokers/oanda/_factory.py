"""How a node attaches an OANDA v20 account: the ``oanda`` venue kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, Increments, LearnedIncrements, places_increment
from ._actor import CURSOR_SCOPE, OandaBroker, OandaLink, TrackedOrder
from ._capabilities import oanda_capabilities
from ._settings import OandaSettings

__all__ = ["OANDA", "build_oanda", "link_status", "seed_link"]


def seed_link(link: OandaLink, recovered: RecoveredVenue) -> None:
    """A new process knows its orders and its cursor only from the journal: the
    live orders are reported if the venue never heard of them, the ones of
    unknown outcome are asked for, and the replay starts at the journaled cursor."""
    for view in recovered.open_orders:
        tracked = link.orders.setdefault(view.client_order_id, TrackedOrder(view.symbol))
        tracked.units = view.order.quantity
        tracked.filled = max(tracked.filled, view.filled_quantity)
        if view.venue_order_id is not None and view.venue_order_id.isdigit():
            tracked.order_id = view.venue_order_id
            link.client_ids[view.venue_order_id] = view.client_order_id
    for view in recovered.live:
        link.orders[view.client_order_id].report_if_missing = True
    cursor = recovered.cursors.get(CURSOR_SCOPE)
    if cursor is not None and cursor.isdigit():
        link.cursor = max(link.cursor or 0, int(cursor))


def link_status(link: OandaLink) -> dict[str, Any]:
    return {
        "connections": link.connections,
        "reconciliations": link.reconciliations,
        "malformed_payloads": link.malformed_payloads,
        "unknown_transactions": link.unknown_transactions,
        "unsettled_orders": len(link.orders),
        "transaction_cursor": link.cursor,
        "replayed_transactions": link.replayed_transactions,
        "skipped_repeats": link.skipped_repeats,
        "currency": link.currency,
        "balance": None if link.balance is None else str(link.balance),
        "positions": {k: str(v) for k, v in sorted(link.positions.items())},
    }


def _increments(broker: OandaBroker) -> Iterator[Increments]:
    """Each instrument's ``displayPrecision`` and ``tradeUnitsPrecision`` as increments."""
    for symbol, instrument in list(broker.instruments.items()):
        yield (
            symbol,
            places_increment(instrument.price_precision),
            places_increment(instrument.units_precision),
        )


def build_oanda(context: VenueContext[OandaSettings]) -> VenueBuild:
    settings = context.settings
    name = context.name
    rest_url, stream_url = settings.urls()
    previous = context.previous
    link = previous if isinstance(previous, OandaLink) else OandaLink()
    seed_link(link, context.recovered)
    oms = context.reports_to
    token = settings.token.get_secret_value()
    learned = LearnedIncrements(_increments)
    return VenueBuild(
        broker=context.broker_spec(
            learned.watch(
                lambda: OandaBroker(
                    name,
                    rest_url=rest_url,
                    stream_url=stream_url,
                    token=token,
                    account_id=settings.account_id,
                    instruments=settings.instruments,
                    reports_to=oms,
                    link=link,
                    request_timeout=settings.request_timeout,
                    stream_timeout=settings.stream_timeout,
                    connection_spacing=settings.connection_spacing,
                    check_interval=settings.check_interval or None,
                    rest_rate_limit=settings.rest_rate_limit,
                )
            )
        ),
        capabilities=oanda_capabilities(),
        runtime=link,
        status=lambda: {**link_status(link), INSTRUMENTS_KEY: learned.status()},
    )


OANDA = VenueKind(
    "oanda",
    settings=OandaSettings,
    factory=build_oanda,
    description="OANDA v20 (fxTrade Practice, fxTrade, or a custom URL such as a local fake)",
)
