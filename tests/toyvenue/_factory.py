"""How a node attaches a toy venue: the ``toy`` venue kind's factory."""

from __future__ import annotations

from typing import Any

from tradenode.brokers import VenueBuild, VenueContext, VenueKind

from ._actor import ToyBroker, ToyLink
from ._capabilities import toy_capabilities
from ._settings import ToySettings

__all__ = ["VENUE_KIND", "build_toy"]


def build_toy(context: VenueContext[ToySettings]) -> VenueBuild:
    settings = context.settings
    previous = context.previous
    link = previous if isinstance(previous, ToyLink) else ToyLink()
    # A new process knows its orders and its cursor only from the journal: the
    # live ones are reported if the venue never heard of them; those of unknown
    # outcome are the node's to resolve, but they are ours, not someone else's.
    for view in context.recovered.open_orders:
        link.unsettled.setdefault(view.client_order_id, view.symbol)
    link.report_if_missing.update(view.client_order_id for view in context.recovered.live)
    cursor = context.recovered.cursors.get("trades")
    if cursor is not None and cursor.isdigit():
        link.trade_cursor = max(link.trade_cursor or 0, int(cursor))
    name, oms, clock = context.name, context.reports_to, context.clock
    api_key = settings.api_key.get_secret_value()

    def status() -> dict[str, Any]:
        return {
            "connections": link.connections,
            "reconciliations": link.reconciliations,
            "malformed_payloads": link.malformed_payloads,
            "unsettled_orders": len(link.unsettled),
            "trade_cursor": link.trade_cursor,
        }

    return VenueBuild(
        broker=context.broker_spec(
            lambda: ToyBroker(
                name,
                host=settings.host,
                port=settings.port,
                api_key=api_key,
                reports_to=oms,
                link=link,
                wall_time_ms=lambda: clock.time_ns() // 1_000_000,
                recv_window_ms=settings.recv_window_ms,
                request_timeout=settings.request_timeout,
                check_interval=settings.check_interval or None,
            )
        ),
        capabilities=toy_capabilities(settings.recv_window_ms),
        runtime=link,
        status=status,
    )


VENUE_KIND = VenueKind(
    "toy",
    settings=ToySettings,
    factory=build_toy,
    description="the toy venue: line-delimited JSON over TCP (a third-party adapter in tests/)",
)
