"""How a node attaches an OKX account: the ``okx`` venue kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, Increments, LearnedIncrements
from ._actor import CURSOR_SCOPE, OkxBroker, OkxLink, TrackedOrder
from ._capabilities import okx_capabilities
from ._session import OkxUrls, SessionSettings
from ._settings import OkxSettings
from ._signing import OkxCredentials

__all__ = ["OKX", "build_okx", "link_status", "seed_link"]


def seed_link(link: OkxLink, recovered: RecoveredVenue) -> None:
    """A new process knows its orders and its fill cursor only from the journal:
    the live ones are reported if the venue never heard of them, the sweep
    resumes at the journaled ``billId``."""
    for view in recovered.live:
        tracked = link.orders.setdefault(view.client_order_id, TrackedOrder(view.symbol))
        tracked.report_if_missing = True
        if tracked.order_id is None and view.venue_order_id:
            tracked.order_id = view.venue_order_id
    cursor = recovered.cursors.get(CURSOR_SCOPE)
    if (
        cursor is not None
        and cursor.isdigit()
        and (link.fill_cursor is None or int(cursor) > int(link.fill_cursor))
    ):
        link.fill_cursor = cursor


def link_status(link: OkxLink) -> dict[str, Any]:
    return {
        "connections": link.connections,
        "reconciliations": link.reconciliations,
        "malformed_payloads": link.malformed_payloads,
        "unsettled_orders": len(link.orders),
        "fill_cursor": link.fill_cursor,
        "ws_order_requests": link.ws_requests,
        "rest_order_requests": link.rest_requests,
    }


def _increments(broker: OkxBroker) -> Iterator[Increments]:
    """Each instrument's ``tickSz`` and ``lotSz``."""
    for symbol, instrument in list(broker.instruments.items()):
        yield symbol, instrument.tick_size, instrument.lot_size


def build_okx(context: VenueContext[OkxSettings]) -> VenueBuild:
    settings = context.settings
    name = context.name
    rest, ws_private, ws_public = settings.urls()
    urls = OkxUrls(rest, ws_private, ws_public)
    credentials = OkxCredentials(
        settings.api_key.get_secret_value(),
        settings.api_secret.get_secret_value(),
        settings.passphrase.get_secret_value(),
    )
    session_settings = SessionSettings(
        request_timeout=settings.request_timeout,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        demo=settings.sends_demo_header,
    )
    previous = context.previous
    link = previous if isinstance(previous, OkxLink) else OkxLink()
    seed_link(link, context.recovered)
    oms, clock = context.reports_to, context.clock
    learned = LearnedIncrements(_increments)
    return VenueBuild(
        broker=context.broker_spec(
            learned.watch(
                lambda: OkxBroker(
                    name,
                    credentials=credentials,
                    urls=urls,
                    reports_to=oms,
                    link=link,
                    symbols=settings.symbols,
                    settings=session_settings,
                    wall_time_ms=lambda: clock.time_ns() // 1_000_000,
                    ws_orders=settings.ws_orders,
                    check_interval=settings.check_interval or None,
                )
            )
        ),
        capabilities=okx_capabilities(),
        runtime=link,
        status=lambda: {**link_status(link), INSTRUMENTS_KEY: learned.status()},
    )


OKX = VenueKind(
    "okx",
    settings=OkxSettings,
    factory=build_okx,
    description="OKX v5 spot (live, demo trading, or a custom URL such as a local fake)",
)
