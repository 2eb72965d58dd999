"""How a node attaches a Coinbase Advanced Trade account: the ``coinbase`` venue kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, Increments, LearnedIncrements
from ._actor import CURSOR_SCOPE, CoinbaseBroker, CoinbaseLink, TrackedOrder
from ._capabilities import coinbase_capabilities
from ._settings import CoinbaseSettings

__all__ = ["COINBASE", "build_coinbase", "link_status", "seed_link"]


def seed_link(link: CoinbaseLink, recovered: RecoveredVenue) -> None:
    """A new process knows its orders and its cursor only from the journal: the
    live orders are looked up (and reported if the venue never heard of them),
    and the fills sweep starts at the journaled cursor."""
    for view in recovered.open_orders:
        tracked = link.orders.setdefault(view.client_order_id, TrackedOrder(view.symbol))
        tracked.quantity = view.order.quantity
        # What the journal has filled is what the venue showed at least. Not counted
        # as forwarded: this process knows none of its trade ids, so it forwards the
        # order's fills again (the OMS drops those it has) and settles the order only
        # once it has read them all.
        tracked.venue_filled = max(tracked.venue_filled, view.filled_quantity)
        tracked.editable = tracked.editable or (
            view.order.order_type.value in ("LIMIT", "STOP_LIMIT")
            and view.order.time_in_force.value == "GTC"
        )
        if view.venue_order_id:
            tracked.order_id = view.venue_order_id
            link.client_ids[view.venue_order_id] = view.client_order_id
    for view in recovered.live:
        link.orders[view.client_order_id].report_if_missing = True
        link.orders[view.client_order_id].accepted = True
    cursor = recovered.cursors.get(CURSOR_SCOPE)
    if cursor:
        link.cursor = cursor


def link_status(link: CoinbaseLink) -> dict[str, Any]:
    return {
        "connections": link.connections,
        "reconciliations": link.reconciliations,
        "malformed_payloads": link.malformed_payloads,
        "unsettled_orders": len(link.orders),
        "fills_cursor": link.cursor,
        "fills_forwarded": link.fills_forwarded,
        "fill_lookups": link.fill_lookups,
        "unsettled_fills": link.unsettled_fills,
        "sequence_gaps": link.sequence_gaps,
        "repeated_frames": link.repeated_frames,
        "ignored_events": link.ignored_events,
        "balances": {k: str(v) for k, v in sorted(link.balances.items())},
    }


def _increments(broker: CoinbaseBroker) -> Iterator[Increments]:
    """Each product's ``price_increment`` (else ``quote_increment``) and ``base_increment``."""
    for symbol, product in list(broker.products.items()):
        yield symbol, product.price_increment, product.base_increment


def build_coinbase(context: VenueContext[CoinbaseSettings]) -> VenueBuild:
    settings = context.settings
    name = context.name
    rest_url, ws_url, ws_user_url = settings.urls()
    previous = context.previous
    link = previous if isinstance(previous, CoinbaseLink) else CoinbaseLink()
    seed_link(link, context.recovered)
    oms = context.reports_to
    credentials = settings.credentials()
    learned = LearnedIncrements(_increments)
    return VenueBuild(
        broker=context.broker_spec(
            learned.watch(
                lambda: CoinbaseBroker(
                    name,
                    credentials=credentials,
                    rest_url=rest_url,
                    ws_url=ws_url,
                    ws_user_url=ws_user_url,
                    products=settings.products,
                    reports_to=oms,
                    link=link,
                    request_timeout=settings.request_timeout,
                    stream_timeout=settings.stream_timeout,
                    check_interval=settings.check_interval or None,
                    rest_rate_limit=settings.rest_rate_limit,
                    fills_lookups=settings.fills_lookups,
                )
            )
        ),
        capabilities=coinbase_capabilities(),
        runtime=link,
        status=lambda: {**link_status(link), INSTRUMENTS_KEY: learned.status()},
    )


COINBASE = VenueKind(
    "coinbase",
    settings=CoinbaseSettings,
    factory=build_coinbase,
    description="Coinbase Advanced Trade spot (production, the REST sandbox, or a custom URL "
    "such as a local fake)",
)
