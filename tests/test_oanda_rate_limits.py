"""OANDA's rate limits, kept by the node (issue #15): requests per second through the
breaker, new connections per second through the link's pacer, and a breaker set
faster than OANDA allows refused as a config error."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tradenode import ConfigError, parse_config
from tradenode.brokers.oanda import OandaLink

# The pacer is the session layer's: tested alone with an injected clock.
from tradenode.brokers.oanda._session import ConnectionPacer
from tradenode.messages import OrderStatus, Side
from tradenode.supervision import ManualClock
from tradenode.testing.venues import OandaVenue

from ._oanda_helpers import market, node_config, oanda_node, venue_clock

D = Decimal
BREAKER = "breaker: {failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[OandaVenue]:
    with OandaVenue(seed=5, clock=venue_clock(clock), heartbeat_interval=0.2) as local_venue:
        local_venue.freeze_prices()
        local_venue.set_price("EUR_USD", D("1.10000"))
        yield local_venue


def _limited(config: str, *, rate: int) -> str:
    """``config`` with OANDA's limit and the breaker's rate both at ``rate`` per second."""
    assert BREAKER in config
    breaker = BREAKER[:-1] + f", rate_per_second: {rate}, burst: {rate}}}"
    return config.replace(BREAKER, breaker).replace(
        "connection_spacing: 0", f"connection_spacing: 0\n      rest_rate_limit: {rate}"
    )


def test_a_burst_of_orders_leaves_at_most_oandas_rate_per_second(
    venue: OandaVenue, clock: ManualClock
) -> None:
    rate, orders = 4, 10
    config = _limited(node_config(venue), rate=rate)
    with oanda_node(venue, clock=clock, config_text=config) as h:
        h.sync()
        clock.advance(1.0)  # the start's own requests leave the one-second window
        h.sync()
        before = venue.calls().get("POST orders", 0)
        coids = [h.do(market(Side.BUY, "100")) for _ in range(orders)]
        h.sync()
        placed = [venue.calls().get("POST orders", 0) - before]
        while placed[-1] < orders and len(placed) < 3 * orders:
            clock.advance(1.0)
            h.sync()
            placed.append(venue.calls().get("POST orders", 0) - before)
        per_second = [placed[0]] + [b - a for a, b in itertools.pairwise(placed)]
        assert placed[-1] == orders, placed
        assert max(per_second) <= rate, per_second
        assert len([n for n in per_second if n > 0]) >= orders // rate, per_second
        for coid in coids:
            h.wait_status(coid, OrderStatus.FILLED)
        assert all(count == 1 for count in venue.submissions().values())


def test_a_breaker_faster_than_oandas_limit_is_a_config_error(venue: OandaVenue) -> None:
    config = node_config(venue).replace(BREAKER, BREAKER[:-1] + ", rate_per_second: 500}")
    with pytest.raises(ConfigError) as raised:
        parse_config(config)
    assert raised.value.key is not None and "rate_per_second" in raised.value.key
    assert "OANDA's REST limit" in str(raised.value)


def test_new_connections_are_spaced_across_incarnations() -> None:
    now = [100.0]
    pacer = ConnectionPacer(0.5, monotonic=lambda: now[0])
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]
    now[0] += 0.75  # the first two slots have passed; the third is 0.25 s away
    assert pacer.reserve() == pytest.approx(0.75)
    now[0] += 10.0
    assert pacer.reserve() == 0.0


def test_the_link_keeps_one_pacer_for_every_incarnation(venue: OandaVenue) -> None:
    link = OandaLink()
    first = link.pacer_for(0.5)
    assert link.pacer_for(0.5) is first, "a restarted broker would connect unpaced"
    assert link.pacer_for(1.0) is not first
