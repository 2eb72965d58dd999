"""How a node attaches a Binance Spot account: the ``binance`` venue kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..._registry import VenueKind
from .._factory import RecoveredVenue, VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, Increments, LearnedIncrements
from ._actor import BinanceBroker, BinanceLink, TrackedOrder
from ._capabilities import binance_capabilities
from ._session import BinanceEndpoints, SessionSettings
from ._settings import BinanceSettings
from ._signing import ApiCredentials, BinanceCredentials, Ed25519Credentials

__all__ = ["BINANCE", "binance_credentials", "binance_endpoints", "seed_link"]


def binance_endpoints(settings: BinanceSettings) -> BinanceEndpoints:
    if settings.environment == "custom":
        assert settings.rest_url and settings.ws_api_url and settings.stream_url
        return BinanceEndpoints(settings.rest_url, settings.ws_api_url, settings.stream_url)
    if settings.environment == "live":
        return BinanceEndpoints.live()
    return BinanceEndpoints.testnet()


def binance_credentials(settings: BinanceSettings) -> ApiCredentials:
    """HMAC or Ed25519 credentials from validated settings (the key was checked then)."""
    if settings.key_type == "ed25519":
        if settings.private_key is not None:
            pem = settings.private_key.get_secret_value().encode("utf-8")
        else:
            assert settings.private_key_path is not None
            pem = settings.private_key_path.read_bytes()
        return Ed25519Credentials.from_pem(settings.api_key.get_secret_value(), pem)
    assert settings.api_secret is not None
    return BinanceCredentials(
        settings.api_key.get_secret_value(), settings.api_secret.get_secret_value()
    )


def seed_link(link: BinanceLink, recovered: RecoveredVenue) -> None:
    """A new process knows its unsettled orders only from the journal: hand the
    live ones to the broker's first reconciliation (reported if the venue has
    never heard of them), and resume the trade and order sweeps where the
    journaled cursors say."""
    for view in recovered.live:
        link.orders.setdefault(
            view.client_order_id, TrackedOrder(view.symbol, report_if_missing=True)
        )
    for scope, cursor in recovered.cursors.items():
        kind, _, symbol = scope.partition("/")
        cursors = {"trades": link.trade_cursor, "orders": link.order_cursor}.get(kind)
        if cursors is not None and symbol and cursor.lstrip("-").isdigit():
            cursors[symbol] = max(cursors.get(symbol, -1), int(cursor))


def link_status(link: BinanceLink) -> dict[str, Any]:
    return {
        "connections": link.connections,
        "reconciliations": link.reconciliations,
        "malformed_payloads": link.malformed_payloads,
        "unsettled_orders": len(link.orders),
        "used_weight": dict(link.used_weight),
        "order_count": dict(link.order_count),
    }


def _increments(broker: BinanceBroker) -> Iterator[Increments]:
    """The PRICE_FILTER tickSize and LOT_SIZE stepSize of each symbol (0: the filter is off)."""
    for symbol, rules in list(broker.rules.items()):
        yield symbol, rules.tick_size or None, rules.step_size or None


def build_binance(context: VenueContext[BinanceSettings]) -> VenueBuild:
    settings = context.settings
    name = context.name
    endpoints = binance_endpoints(settings)
    credentials = binance_credentials(settings)
    session_settings = SessionSettings(
        recv_window_ms=settings.recv_window_ms,
        request_timeout=settings.request_timeout,
        heartbeat_interval=settings.heartbeat_interval,
        heartbeat_timeout=settings.heartbeat_timeout,
    )
    previous = context.previous
    link = previous if isinstance(previous, BinanceLink) else BinanceLink()
    seed_link(link, context.recovered)
    oms, clock, symbols = context.reports_to, context.clock, settings.symbols
    check_interval = settings.check_interval or None
    learned = LearnedIncrements(_increments)
    return VenueBuild(
        broker=context.broker_spec(
            learned.watch(
                lambda: BinanceBroker(
                    name,
                    credentials=credentials,
                    endpoints=endpoints,
                    reports_to=oms,
                    link=link,
                    symbols=symbols,
                    settings=session_settings,
                    wall_time_ms=lambda: clock.time_ns() // 1_000_000,
                    check_interval=check_interval,
                    order_entry=settings.order_entry,
                )
            )
        ),
        capabilities=binance_capabilities(settings.recv_window_ms),
        runtime=link,
        status=lambda: {**link_status(link), INSTRUMENTS_KEY: learned.status()},
    )


BINANCE = VenueKind(
    "binance",
    settings=BinanceSettings,
    factory=build_binance,
    description="Binance Spot (live, testnet, or a custom URL such as `tradenode venue binance`)",
)
