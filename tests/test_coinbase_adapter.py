"""The Coinbase adapter through a running node, against the local fake Coinbase on loopback.

Lifecycles the conformance suite does not already cover (GTD, FOK/IOC,
post-only, native edit of a GTC limit and the refusal to edit anything
else), then the user channel's faults: a sequence gap (restart, reconcile,
every fill once), repeated and reordered updates (never a doubled fill),
a malformed frame (logged, counted, never fatal), a product Coinbase does
not list (a config error naming it), and the private key never printed.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from tradenode import ConfigError
from tradenode.actors import GetMetrics, Outcome, Subscribe

# The actor's network half and the endpoint layer are internal: the lookup is driven alone.
from tradenode.brokers.coinbase._actor import _lookup
from tradenode.brokers.coinbase._endpoints import CoinbaseApi, RestResult
from tradenode.messages import (
    ModifyRejected,
    OrderFilled,
    OrderModified,
    OrderStatus,
    Quote,
    Side,
    TimeInForce,
)
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import CoinbaseOrderInfo, CoinbaseVenue

from ._coinbase_helpers import (
    CoinbaseHarness,
    K,
    coinbase_node,
    event,
    limit,
    market,
    post_as_another_client,
    stop_limit,
    venue_clock,
)
from ._node_helpers import Scripted

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[CoinbaseVenue]:
    with CoinbaseVenue(seed=7, clock=venue_clock(clock), heartbeat_interval=0.2) as local:
        local.freeze_prices()
        local.set_price("BTC-USD", D("50000"))
        yield local


@pytest.fixture
def h(venue: CoinbaseVenue, clock: ManualClock) -> Iterator[CoinbaseHarness]:
    with coinbase_node(venue, clock=clock) as harness:
        yield harness


def assert_exactly_once(h: CoinbaseHarness) -> None:
    """Every fill the venue made reached the OMS once, under the venue's trade id;
    no client order id was placed twice; the position equals the venue's."""
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    assert set(executions) == {f"coinbase-{fill.trade_id}" for fill in h.venue.fills()}
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()
    assert h.position("BTC-USD") == h.venue.position("BTC-USD")


def venue_order(venue: CoinbaseVenue, client_order_id: str) -> CoinbaseOrderInfo:
    (found,) = [o for o in venue.orders() if o.client_order_id == client_order_id]
    return found


# -- lifecycles -----------------------------------------------------------------------------


def test_a_resting_limit_fills_in_parts_each_fill_once_under_its_trade_id(
    h: CoinbaseHarness,
) -> None:
    coid = h.do(limit(Side.BUY, "49000", "1.2"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    for price in ("48990", "48980", "48970"):
        h.venue.set_price("BTC-USD", D(price))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == D("1.2")
    assert len(h.fills()) == len(h.venue.fills()) >= 3
    assert h.link().fill_lookups >= 1  # a growth of the cumulative size looked its fills up
    assert_exactly_once(h)


def test_gtd_orders_rest_then_expire_at_their_end_time(h: CoinbaseHarness) -> None:
    end = h.clock.time_ns() + 60 * 1_000_000_000
    coid = h.do(limit(Side.BUY, "40000", "0.1", time_in_force=TimeInForce.GTD, expire_time_ns=end))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    found = venue_order(h.venue, coid)
    assert found.configuration == "limit_limit_gtd"
    h.clock.advance(61)
    h.venue.step()
    h.wait_status(coid, OrderStatus.EXPIRED)


def test_fok_and_ioc_limits(h: CoinbaseHarness) -> None:
    unfillable = h.do(limit(Side.BUY, "40000", "0.1", time_in_force=TimeInForce.FOK))
    h.wait_status(unfillable, OrderStatus.CANCELED)  # Coinbase: a FOK it cannot fill is CANCELLED
    ioc = h.do(limit(Side.BUY, "51000", "0.1", time_in_force=TimeInForce.IOC))
    assert h.wait_status(ioc, OrderStatus.FILLED).filled_quantity == D("0.1")
    assert venue_order(h.venue, unfillable).configuration == "limit_limit_fok"
    assert venue_order(h.venue, ioc).configuration == "sor_limit_ioc"
    assert_exactly_once(h)


def test_a_gtc_limit_is_edited_in_place(h: CoinbaseHarness) -> None:
    coid = h.do(limit(Side.BUY, "49000", "0.2"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    seen = h.events()
    same = h.do(lambda ctx: ctx.modify_order(coid, quantity=D("0.3"), price=D("49100")))
    assert same == coid, "a native edit keeps the client order id"
    modified = seen.wait_for(lambda m: isinstance(m, OrderModified))[0]
    assert (modified.quantity, modified.price) == (D("0.3"), D("49100"))
    found = venue_order(h.venue, coid)
    assert (found.size, found.limit_price) == (D("0.3"), D("49100"))
    h.venue.set_price("BTC-USD", D("49050"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.3")
    assert_exactly_once(h)


def test_a_gtc_stop_limit_is_edited_in_place_stop_price_included(h: CoinbaseHarness) -> None:
    coid = h.do(stop_limit(Side.BUY, "51000", "51100", "0.1"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    seen = h.events()
    h.do(lambda ctx: ctx.modify_order(coid, stop_price=D("52000"), price=D("52100")))
    modified = seen.wait_for(lambda m: isinstance(m, OrderModified))[0]
    assert (modified.stop_price, modified.price, modified.quantity) == (
        D("52000"),
        D("52100"),
        D("0.1"),
    )
    found = venue_order(h.venue, coid)
    assert (found.stop_price, found.limit_price) == (D("52000"), D("52100"))
    h.venue.set_price("BTC-USD", D("51500"))  # past the old stop, short of the new one
    h.sync()
    assert h.order(coid).status is OrderStatus.ACCEPTED


def test_a_gtd_order_is_modified_by_cancel_replace(h: CoinbaseHarness) -> None:
    """Coinbase edits only GTC limits in place: a GTD order's modify cancels it
    and places a replacement under a new client id, linked as one logical order."""
    end = h.clock.time_ns() + 3_600 * 1_000_000_000
    coid = h.do(limit(Side.BUY, "40000", "0.1", time_in_force=TimeInForce.GTD, expire_time_ns=end))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    replacement = h.do(lambda ctx: ctx.modify_order(coid, price=D("40100")))
    assert replacement is not None and replacement != coid
    h.wait_status(coid, OrderStatus.CANCELED)
    h.wait_status(replacement, OrderStatus.ACCEPTED)
    assert venue_order(h.venue, coid).limit_price == D("40000"), "never edited in place"
    new = venue_order(h.venue, replacement)
    assert (new.limit_price, new.size) == (D("40100"), D("0.1"))
    assert h.venue.calls().get("POST orders/edit", 0) == 0
    h.venue.set_price("BTC-USD", D("40050"))
    assert h.wait_status(replacement, OrderStatus.FILLED).filled_quantity == D("0.1")
    assert_exactly_once(h)


def test_a_partly_filled_gtd_order_is_replaced_by_what_is_left(h: CoinbaseHarness) -> None:
    end = h.clock.time_ns() + 3_600 * 1_000_000_000
    coid = h.do(limit(Side.BUY, "49000", "1.2", time_in_force=TimeInForce.GTD, expire_time_ns=end))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("BTC-USD", D("48990"))
    partly = h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity
    assert D(0) < partly < D("1.2")
    replacement = h.do(lambda ctx: ctx.modify_order(coid, price=D("48500")))
    h.wait_status(replacement, OrderStatus.ACCEPTED)
    assert venue_order(h.venue, replacement).size == D("1.2") - partly, "only the rest"
    assert venue_order(h.venue, replacement).configuration == "limit_limit_gtd"
    h.venue.set_price("BTC-USD", D("48700"))  # the old price would fill; the new one does not
    h.sync()
    assert h.order(replacement).status is OrderStatus.ACCEPTED
    for price in ("48490", "48480", "48470"):
        h.venue.set_price("BTC-USD", D(price))
    h.wait_status(replacement, OrderStatus.FILLED)
    assert h.position("BTC-USD") == D("1.2")
    assert_exactly_once(h)


def test_a_replace_of_an_order_this_process_did_not_place_is_refused(
    venue: CoinbaseVenue, clock: ManualClock, tmp_path: Path
) -> None:
    """A GTD order placed before a restart: its terms are in Coinbase's books, not in
    this connection, so its cancel/replace is refused and the order stays as it is."""
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    end = clock.time_ns() + 3_600 * 1_000_000_000
    with coinbase_node(venue, journal, clock=clock) as first:
        coid = first.do(
            limit(Side.BUY, "40000", "0.1", time_in_force=TimeInForce.GTD, expire_time_ns=end)
        )
        first.wait_status(coid, OrderStatus.ACCEPTED)
    clock.advance(1.0)  # a new process: a new run tag in its client order ids
    with coinbase_node(venue, journal, clock=clock) as h:
        h.wait_status(coid, OrderStatus.ACCEPTED)
        seen = h.events()
        h.do(lambda ctx: ctx.modify_order(coid, price=D("40100")))
        refused = seen.wait_for(lambda m: isinstance(m, ModifyRejected))[0]
        assert refused.code == "REPLACE_UNAVAILABLE"
        h.sync()
        assert h.order(coid).status is OrderStatus.ACCEPTED
        found = venue_order(venue, coid)
        assert (found.status, found.limit_price) == ("OPEN", D("40000"))
        assert [o.client_order_id for o in venue.orders()] == [coid], "nothing placed"


class Watcher(Scripted):
    venue = "coinbase"


def test_quotes_are_the_top_of_the_level2_book_with_the_tickers_last_price(
    h: CoinbaseHarness,
) -> None:
    seen = EventRecorder()
    h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=("BTC-USD",)))
    h.venue.set_price("BTC-USD", D("50100"))
    bid, ask, last = h.venue.quote("BTC-USD")
    assert last == D("50100")
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and (m.bid, m.ask, m.last) == (bid, ask, last)
    )[0]
    assert quote.venue == "coinbase" and quote.bid < quote.ask


# -- the user channel's faults ----------------------------------------------------------------


def test_a_sequence_gap_restarts_the_broker_which_reconciles_every_fill_once(
    h: CoinbaseHarness,
) -> None:
    coid = h.do(limit(Side.BUY, "49000", "1.2"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.skip_sequence(3)
    h.venue.set_price("BTC-USD", D("48990"))  # a partial fill whose update comes after the gap
    h.restart(2)
    assert h.link().sequence_gaps >= 1
    h.venue.set_price("BTC-USD", D("48980"))
    h.venue.set_price("BTC-USD", D("48970"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("1.2")
    assert_exactly_once(h)


def test_a_venue_that_goes_down_is_reconnected_by_a_restart_and_nothing_is_lost(
    h: CoinbaseHarness,
) -> None:
    coid = h.do(limit(Side.BUY, "49000", "0.4"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.down()
    h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))
    submitted = h.do(market(Side.BUY, "0.1"))
    h.venue.set_price("BTC-USD", D("48990"))  # the resting order fills while we are away
    h.venue.up()
    h.restart(2)
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.4")
    h.wait_status(submitted, OrderStatus.FILLED)
    assert h.link().connections >= 2
    assert_exactly_once(h)


def test_repeated_updates_never_double_a_fill(h: CoinbaseHarness) -> None:
    h.venue.duplicate_events(20)
    coid = h.do(limit(Side.BUY, "49000", "1.2"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    for price in ("48990", "48980", "48970"):
        h.venue.set_price("BTC-USD", D(price))
    h.wait_status(coid, OrderStatus.FILLED)
    market_order = h.do(market(Side.BUY, "0.1"))
    h.wait_status(market_order, OrderStatus.FILLED)
    assert h.link().repeated_frames > 0
    assert not [e for e in h.supervision.items if event(K.RESTARTED)(e)]
    assert_exactly_once(h)


def test_reordered_updates_are_a_gap_then_a_reconciliation_never_a_doubled_fill(
    h: CoinbaseHarness,
) -> None:
    coid = h.do(limit(Side.BUY, "49000", "1.2"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.reorder_events(2)
    h.venue.set_price("BTC-USD", D("48990"))
    h.venue.set_price("BTC-USD", D("48980"))
    h.venue.release_events()
    h.restart(2)
    h.venue.set_price("BTC-USD", D("48970"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("1.2")
    assert_exactly_once(h)


def test_a_malformed_frame_is_logged_counted_and_never_fatal(
    h: CoinbaseHarness, caplog: pytest.LogCaptureFixture
) -> None:
    link = h.link()
    h.venue.corrupt_next_event()
    coid = h.do(market(Side.BUY, "0.1"))
    h.wait_status(coid, OrderStatus.FILLED)
    later = h.do(market(Side.BUY, "0.1"))
    h.wait_status(later, OrderStatus.FILLED)
    assert link.malformed_payloads == 1
    assert h.node.status()["connections"]["coinbase"]["malformed_payloads"] == 1
    assert any(
        "malformed" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    )
    assert not h.node.failed
    assert_exactly_once(h)


def test_fills_held_back_by_the_venue_arrive_once_it_releases_them(h: CoinbaseHarness) -> None:
    coid = h.do(limit(Side.BUY, "49000", "0.4"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.hold_fills()
    h.venue.set_price("BTC-USD", D("48990"))
    h.sync()
    assert h.order(coid).filled_quantity == 0
    h.venue.release_fills()
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.4")
    assert_exactly_once(h)


def test_a_refused_order_is_rejected_with_coinbases_reason(h: CoinbaseHarness) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("coinbase", replies)
    coid = h.do(market(Side.BUY, "1000"))  # 50 million USD: more than the account holds
    view = h.wait_status(coid, OrderStatus.REJECTED)
    assert view.rejection_code == "INSUFFICIENT_FUND"
    assert replies.wait_for(lambda r: r.outcome is Outcome.REJECTED)
    assert h.node.failure_stats("coinbase").failure_count == 0  # a business answer, not a failure
    assert not [o for o in h.venue.orders() if o.client_order_id == coid]


def test_a_lost_submit_answer_is_looked_up_by_client_id_and_never_sent_twice(
    h: CoinbaseHarness,
) -> None:
    """The breaker asks before anything is sent again: by the venue's order id when
    the user channel already named it, else by listing the account's orders
    (Coinbase has no lookup by client order id). The venue had it: sent once."""

    def lookups() -> int:
        calls = h.venue.calls()
        return calls.get("GET orders/historical/batch", 0) + calls.get(
            "GET orders/historical/{order_id}", 0
        )

    before = lookups()
    h.venue.fail_requests(1, after=True, lose=True, endpoints=["POST orders"])
    coid = h.do(market(Side.BUY, "0.1"))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == D("0.1")
    assert h.venue.submissions()[coid] == 1
    h.sync()
    h.clock.advance(5)  # the breaker's retry delay: then it asks the venue
    h.sync()
    assert lookups() > before
    assert_exactly_once(h)


def test_the_lookup_by_client_id_pages_through_the_account_orders() -> None:
    """Without the venue's order id, the order is found by listing (newest first,
    page by page) and matching ``client_order_id``; then its fills by order id."""

    def order(order_id: str, client_order_id: str) -> dict[str, object]:
        return {
            "order_id": order_id,
            "client_order_id": client_order_id,
            "product_id": "BTC-USD",
            "side": "BUY",
            "status": "FILLED",
            "order_configuration": {"market_market_ioc": {"base_size": "0.1"}},
            "filled_size": "0.1",
            "average_filled_price": "50000",
        }

    pages = {
        None: {"orders": [order("o3", "c3"), order("o2", "c2")], "has_next": True, "cursor": "p2"},
        "p2": {"orders": [order("o1", "wanted")], "has_next": False, "cursor": ""},
    }
    asked: list[tuple[str, list[tuple[str, str]]]] = []

    async def send(
        method: str, path: str, query: Any = (), body: Any = None, *, public: bool = False
    ) -> RestResult:
        asked.append((path, list(query)))
        if path.endswith("/orders/historical/batch"):
            return RestResult(200, pages[dict(query).get("cursor")])
        if path.endswith("/orders/historical/o1"):
            return RestResult(200, {"order": order("o1", "wanted")})
        assert path.endswith("/orders/historical/fills")
        return RestResult(200, {"fills": [], "cursor": ""})

    found = trio.run(_lookup, CoinbaseApi(send), "wanted", None)
    assert found is not None and found[0].order_id == "o1"
    assert [path.rsplit("/", 1)[1] for path, _ in asked] == ["batch", "batch", "o1", "fills"]
    assert ("order_ids", "o1") in asked[-1][1]
    assert trio.run(_lookup, CoinbaseApi(send), "absent", None) is None


class LogLine(logging.Handler):
    """Sets ``seen`` when a record containing ``text`` is logged (a condition, not a sleep)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


def test_a_failed_fills_lookup_is_asked_again_and_the_fill_arrives_once(
    h: CoinbaseHarness,
) -> None:
    watcher = LogLine("not read")
    logging.getLogger("tradenode.brokers.coinbase").addHandler(watcher)
    try:
        h.venue.fail_requests(1, status=503, endpoints=["GET orders/historical/fills"])
        coid = h.do(market(Side.BUY, "0.1"))
        assert watcher.seen.wait(20)
    finally:
        logging.getLogger("tradenode.brokers.coinbase").removeHandler(watcher)
    h.sync()
    assert h.order(coid).filled_quantity == 0
    h.clock.advance(0.2)  # the lookup is asked again
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.1")
    assert h.link().fill_lookups == 2
    assert_exactly_once(h)


def test_another_clients_order_on_the_account_is_adopted_with_its_fills(
    h: CoinbaseHarness,
) -> None:
    """The user channel shows every order of the account: one placed by another
    client is reported first (the OMS adopts it), then its fills, once."""
    watcher, seen = h.strategy("watcher")
    h.node.oms.tell(Subscribe(watcher, "external"))
    h.sync()
    post_as_another_client(
        h.venue,
        h.clock.time_ns() // 1_000_000_000,
        {
            "client_order_id": "elsewhere-1",
            "product_id": "BTC-USD",
            "side": "BUY",
            "order_configuration": {"market_market_ioc": {"base_size": "0.05"}},
        },
    )
    seen.wait_for(lambda m: isinstance(m, OrderFilled) and m.client_order_id == "elsewhere-1")
    h.sync()
    view = h.order("elsewhere-1")
    assert (view.strategy_id, view.status) == ("external", OrderStatus.FILLED)
    assert view.filled_quantity == D("0.05")
    assert h.position("BTC-USD") == D("0.05")
    assert_exactly_once(h)


def test_periodic_checks_reconcile_without_repeating_anything(
    venue: CoinbaseVenue, clock: ManualClock
) -> None:
    with coinbase_node(venue, clock=clock, check_interval=30) as h:
        coid = h.do(limit(Side.BUY, "49000", "0.4"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.venue.set_price("BTC-USD", D("48990"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.periodic_check()
        h.periodic_check()
        assert h.link().reconciliations >= 3
        # The sweeps read the fill again (its time is the cursor): forwarded once all the same.
        assert h.link().cursor is not None
        assert h.link().balances["BTC"] == venue.balances()["BTC"][0] + venue.balances()["BTC"][1]
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 0
        assert_exactly_once(h)


# -- configuration and secrets ------------------------------------------------------------------


def test_a_product_coinbase_does_not_list_is_a_config_error_naming_it(
    venue: CoinbaseVenue, clock: ManualClock
) -> None:
    with coinbase_node(venue, clock=clock, products=("BTC-USD", "DOGE-XYZ")) as h:
        failed = h.supervision.wait_for(event(K.FAILED))[0]
    error = failed.error
    assert isinstance(error, ConfigError), error
    assert "DOGE-XYZ" in str(error) and error.key == "coinbase.products"


def test_the_private_key_never_appears_in_logs_status_or_reprs(
    venue: CoinbaseVenue, clock: ManualClock
) -> None:
    key = venue.key
    assert key is not None
    secret_lines = [line for line in key.private_key_pem.splitlines() if "-----" not in line]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.addFilter(lambda record: not record.name.startswith(("tradenode.testing", "hypercorn")))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with coinbase_node(venue, clock=clock) as h:
            coid = h.do(market(Side.BUY, "0.1"))
            h.wait_status(coid, OrderStatus.FILLED)
            texts = [
                json.dumps(h.node.status(), default=str),
                repr(h.node.venues["coinbase"]),
                repr(h.node.config),
                str(h.node.config),
            ]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    texts.append(stream.getvalue())
    assert "Bearer" not in stream.getvalue() or "eyJ" not in stream.getvalue()
    for text in texts:
        assert key.private_key_pem not in text
        for line in secret_lines:
            assert line not in text
