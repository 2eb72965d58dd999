"""How a node attaches an Alpaca trading account: the ``alpaca`` venue kind."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, Increments, LearnedIncrements
from ._actor import CURSOR_SCOPE, AlpacaBroker, AlpacaLink, TrackedOrder
from ._capabilities import alpaca_capabilities
from ._settings import AlpacaSettings

__all__ = ["ALPACA", "build_alpaca", "link_status", "seed_link"]


def seed_link(link: AlpacaLink, recovered: RecoveredVenue) -> None:
    """A new process knows its orders and its cursor only from the journal: the
    live orders are looked up (and reported if the venue never heard of them),
    and the fills sweep starts at the journaled cursor."""
    for view in recovered.open_orders:
        tracked = link.orders.setdefault(view.client_order_id, TrackedOrder(view.symbol))
        tracked.quantity = view.order.quantity
        # What the journal has filled is what the venue showed at least. Not counted
        # as forwarded: this process knows none of its execution ids, so it forwards
        # the order's fills again (the OMS drops those it has).
        tracked.venue_filled = max(tracked.venue_filled, view.filled_quantity)
        if view.venue_order_id:
            tracked.order_id = view.venue_order_id
            link.client_ids[view.venue_order_id] = view.client_order_id
    for view in recovered.live:
        link.orders[view.client_order_id].report_if_missing = True
        link.orders[view.client_order_id].accepted = True
    cursor = recovered.cursors.get(CURSOR_SCOPE)
    if cursor:
        link.cursor = cursor


def link_status(link: AlpacaLink) -> dict[str, Any]:
    return {
        "connections": link.connections,
        "reconciliations": link.reconciliations,
        "malformed_payloads": link.malformed_payloads,
        "unsettled_orders": len(link.orders),
        "fills_cursor": link.cursor,
        "fills_forwarded": link.fills_forwarded,
        "stream_fills": link.stream_fills,
        "swept_fills": link.swept_fills,
        "ignored_events": link.ignored_events,
        "market_closed_refusals": link.market_closed_refusals,
        "cancel_all_failures": link.cancel_all_failures,
        "currency": link.currency,
        "cash": None if link.cash is None else str(link.cash),
        "positions": {k: str(v) for k, v in sorted(link.positions.items())},
    }


def _increments(broker: AlpacaBroker) -> Iterator[Increments]:
    """A crypto asset's ``price_increment`` and ``min_trade_increment``. An equity's
    price increment depends on its price (the sub-penny rule: none stated); its size
    is whole shares unless ``fractionable`` (then Alpaca states no increment, only a
    limit of 9 decimals, which would show every quantity with nine zeros)."""
    for symbol, asset in list(broker.assets.items()):
        if asset.crypto:
            yield symbol, asset.price_increment, asset.min_trade_increment
        elif not asset.fractionable:
            yield symbol, None, Decimal(1)


def build_alpaca(context: VenueContext[AlpacaSettings]) -> VenueBuild:
    settings = context.settings
    name = context.name
    rest_url, stream_url, data_url = settings.urls()
    previous = context.previous
    link = previous if isinstance(previous, AlpacaLink) else AlpacaLink()
    seed_link(link, context.recovered)
    oms = context.reports_to
    secret = settings.secret_key.get_secret_value()
    learned = LearnedIncrements(_increments)
    return VenueBuild(
        broker=context.broker_spec(
            learned.watch(
                lambda: AlpacaBroker(
                    name,
                    key_id=settings.key_id,
                    secret_key=secret,
                    rest_url=rest_url,
                    stream_url=stream_url,
                    data_url=data_url,
                    symbols=settings.symbols,
                    reports_to=oms,
                    link=link,
                    outside_session=settings.outside_session,
                    extended_hours=settings.extended_hours,
                    request_timeout=settings.request_timeout,
                    ping_interval=settings.ping_interval,
                    ping_timeout=settings.ping_timeout,
                    check_interval=settings.check_interval or None,
                    rest_rate_limit=settings.rest_rate_limit,
                )
            )
        ),
        capabilities=alpaca_capabilities(),
        runtime=link,
        status=lambda: {**link_status(link), INSTRUMENTS_KEY: learned.status()},
    )


ALPACA = VenueKind(
    "alpaca",
    settings=AlpacaSettings,
    factory=build_alpaca,
    description="Alpaca Trading API v2 (paper, live, or a custom URL such as a local fake)",
)
