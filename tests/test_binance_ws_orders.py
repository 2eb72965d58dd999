"""Binance order entry over the WebSocket API connection the session holds.

A node with an Ed25519 key logs its WebSocket API connection on; orders,
cancels and cancel/replaces then go as ``order.place``, ``order.cancel`` and
``order.cancelReplace`` on it (the venue's request counters show which API
carried each), with REST as the fallback where the connection is not logged
on or ``order_entry: rest`` asks for it. A connection lost with an order in
flight is an unknown outcome: the order is looked up by its client order id,
never sent twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tradenode import MalformedPayloadError, Node, parse_config
from tradenode.actors import GetFills, Outcome
from tradenode.brokers.binance import BinanceLink
from tradenode.messages import CancelRejected, OrderRejected, OrderStatus, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceVenue

from ._binance_helpers import BinanceHarness, limit, market, venue_clock, wait_until_held

D = Decimal
K = SupervisionEventKind
BROKER = "/wsnode/brokers/binance/broker"
ED_KEY = "tradenode-ws-orders-key"

CONFIG = """
node: {{name: wsnode, seed: 5, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: binance
    kind: binance
    binance:
      environment: custom
      api_key: {key}
{credentials}
      rest_url: {rest}
      ws_api_url: {ws_api}
      stream_url: {stream}
      symbols: [BTCUSDT, ETHUSDT]
      check_interval: 0
{extra}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    """A fresh Ed25519 key: (private PEM, public PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private_pem.decode(), public_pem.decode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock, key_pair: tuple[str, str]) -> Iterator[BinanceVenue]:
    with BinanceVenue(
        seed=31, clock=venue_clock(clock), ed25519_public_keys={ED_KEY: key_pair[1]}
    ) as local_venue:
        yield local_venue


@contextmanager
def ws_node(
    venue: BinanceVenue,
    clock: ManualClock,
    tmp_path: Path,
    key_pair: tuple[str, str],
    *,
    ed25519: bool = True,
    extra: str = "",
) -> Iterator[BinanceHarness]:
    if ed25519:
        key_file = tmp_path / "ed25519.pem"
        key_file.write_text(key_pair[0])
        key = ED_KEY
        credentials = f"      key_type: ed25519\n      private_key_path: {key_file}"
    else:
        key = DEFAULT_API_KEY
        credentials = f"      api_secret: {DEFAULT_API_SECRET}"
    text = CONFIG.format(
        key=key,
        credentials=credentials,
        rest=venue.rest_url,
        ws_api=venue.ws_api_url,
        stream=venue.stream_url,
        extra=extra,
    )
    node = Node(parse_config(text), clock=clock)
    node.start()
    try:
        yield BinanceHarness(node, clock, venue)
    finally:
        node.stop(timeout=20)


def link(h: BinanceHarness) -> BinanceLink:
    found = h.node.venues["binance"]
    assert isinstance(found, BinanceLink)
    return found


def supervision(h: BinanceHarness) -> EventRecorder:
    recorder = EventRecorder()
    h.node.system.events.subscribe(recorder)
    return recorder


def event(kind: SupervisionEventKind, generation: int) -> Any:
    return lambda e: (
        isinstance(e, SupervisionEvent)
        and e.kind is kind
        and e.path == BROKER
        and e.generation == generation
    )


def assert_placed_once(h: BinanceHarness) -> None:
    """Every venue order under its own id once, every fill applied once, positions equal."""
    h.sync()
    ids = [order.client_order_id for order in h.venue.orders()]
    assert len(ids) == len(set(ids)), "an order was placed twice"
    fills = [f.execution_id for f in h.node.oms.ask(GetFills()) if f.venue == "binance"]
    assert len(fills) == len(set(fills)), "a fill was applied twice"
    assert set(fills) == {f"binance-{t.symbol}-{t.trade_id}" for t in h.venue.trades()}
    for order in h.venue.orders():
        assert h.order(order.client_order_id).filled_quantity == order.executed_qty


def test_orders_cancels_and_replaces_go_over_the_websocket_api(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path, key_pair: tuple[str, str]
) -> None:
    with ws_node(venue, clock, tmp_path, key_pair) as h:
        filled = h.do(market(Side.BUY, "0.4"))
        h.wait_status(filled, OrderStatus.FILLED)
        resting = h.do(limit(Side.BUY, "48000.00", "0.2"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        replacement = h.do(lambda ctx: ctx.modify_order(resting, price=D("47500.00")))
        assert replacement is not None and replacement != resting
        h.wait_status(resting, OrderStatus.CANCELED)
        h.wait_status(replacement, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(replacement))
        h.wait_status(replacement, OrderStatus.CANCELED)
        assert_placed_once(h)
        by_id = {o.client_order_id: o for o in venue.orders()}
        assert (by_id[filled].status, by_id[filled].executed_qty) == ("FILLED", D("0.4"))
        assert by_id[replacement].price == D("47500.00")
        calls = venue.calls()
        usage = link(h)
    assert calls["order.place"] == 2
    assert calls["order.cancelReplace"] == 1
    assert calls["order.status"] == 1  # what the replace keeps of the original
    assert calls["order.cancel"] == 1
    for rest in ("POST order", "DELETE order", "POST order/cancelReplace"):
        assert rest not in calls, f"{rest} went over REST"
    # The WS API answers' rateLimits are counted as REST's headers are.
    assert usage.order_count.get("10S", 0) >= 1 and usage.order_count.get("1D", 0) >= 3
    assert usage.used_weight.get("1M", 0) > 0


def test_a_refusal_over_the_websocket_api_is_rejected_with_binances_code(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path, key_pair: tuple[str, str]
) -> None:
    with ws_node(venue, clock, tmp_path, key_pair) as h:
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        # 10.5 BTC at 100,000 USDT is more than the 1,000,000 USDT the account has.
        refused = h.do(limit(Side.BUY, "100000.00", "10.5"))
        (rejected,) = h.wait_for(OrderRejected, refused)
        h.wait_status(refused, OrderStatus.REJECTED)
        replies.wait_for(lambda r: r.outcome is Outcome.REJECTED)
        h.sync()
        calls = venue.calls()
        assert venue.orders() == []
        assert link(h).connections == 1, "a business refusal restarted the broker"
    assert rejected.code == "-2010"
    assert "insufficient balance" in rejected.reason
    assert calls["order.place"] == 1 and "POST order" not in calls


def test_a_cancel_refused_over_the_websocket_api_is_rejected_with_binances_code(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path, key_pair: tuple[str, str]
) -> None:
    """The order filled at the venue before the node heard (the stream held back): its
    order.cancel is refused -2011, told as CancelRejected; the fill still counts once."""
    with ws_node(venue, clock, tmp_path, key_pair) as h:
        resting = h.do(limit(Side.BUY, "49900.00", "0.2"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        venue.reorder_events(100)  # the stream says nothing until released
        venue.set_price("BTCUSDT", D("49800.00"))
        h.do(lambda ctx: ctx.cancel_order(resting))
        (refused,) = h.wait_for(CancelRejected, resting)
        venue.release_events()
        assert h.wait_status(resting, OrderStatus.FILLED).filled_quantity == D("0.2")
        assert_placed_once(h)
        calls = venue.calls()
    assert refused.code == "-2011"
    assert calls["order.cancel"] == 1 and "DELETE order" not in calls


def test_a_429_over_the_websocket_api_waits_its_retry_after_then_places_once(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path, key_pair: tuple[str, str]
) -> None:
    """The WebSocket API names the wait in the error's data (retryAfter, serverTime),
    not in a header: the breaker hears it and holds the order back that long."""
    with ws_node(venue, clock, tmp_path, key_pair) as h:
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        venue.rate_limit(1, retry_after=7)
        coid = h.do(market(Side.BUY, "0.2"))
        limited = replies.wait_for(lambda r: r.outcome is Outcome.RATE_LIMITED)[0]
        assert limited.retry_after == 7
        h.sync()
        assert coid not in venue.submissions()
        h.clock.advance(7.5)
        h.wait_status(coid, OrderStatus.FILLED)
        assert venue.submissions()[coid] == 1
        assert_placed_once(h)
        calls = venue.calls()
    assert calls["order.place"] == 2 and "POST order" not in calls


def test_an_unknown_outcome_over_the_websocket_api_is_looked_up_never_resent(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path, key_pair: tuple[str, str]
) -> None:
    """order.place answered 503 -1007 after the venue placed it: looked up, adopted."""
    with ws_node(venue, clock, tmp_path, key_pair) as h:
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        venue.fail_requests(1, after=True, endpoints=["order.place"])
        coid = h.do(market(Side.BUY, "0.3"))
        replies.wait_for(lambda r: r.outcome is Outcome.TRANSPORT)
        h.sync()
        assert venue.submissions()[coid] == 1
        h.clock.advance(0.5)
        # The lookup by client order id is answered (the venue has it) before the
        # clock moves on: moved first, the lookup could expire in the broker's
        # mailbox and never go out (the stream may fill the order without it).
        replies.wait_for(lambda r: r.report is not None and r.report.client_order_id == coid)
        h.wait_status(coid, OrderStatus.FILLED)
        h.clock.advance(10)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_placed_once(h)
        calls = venue.calls()
    assert calls["order.place"] == 1
    assert "POST order" not in calls
    assert calls["GET order"] >= 1  # the lookup by client order id


def test_a_websocket_api_drop_with_a_submit_in_flight_is_looked_up_never_resent(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path, key_pair: tuple[str, str]
) -> None:
    """The connection goes while the venue holds the order.place (it places the order
    after, its answer lost): the broker restarts, the order is looked up by its client
    order id and adopted from the venue; nothing is sent again, over either API."""
    with ws_node(venue, clock, tmp_path, key_pair) as h:
        events = supervision(h)
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        venue.delay_requests(1, 1.5, endpoints=["order.place"])
        coid = h.do(market(Side.BUY, "0.3"))
        wait_until_held(venue, "order.place")
        assert venue.drop_streams() >= 1
        replies.wait_for(lambda r: r.outcome is Outcome.TRANSPORT)
        scheduled = events.wait_for(event(K.RESTART_SCHEDULED, 2))[0]
        h.clock.advance(scheduled.delay)
        events.wait_for(event(K.RESTARTED, 2))
        h.clock.advance(0.5)
        h.wait_status(coid, OrderStatus.FILLED)
        h.clock.advance(10)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_placed_once(h)
        calls = venue.calls()
    assert calls["order.place"] == 1
    assert "POST order" not in calls
    assert calls["GET order"] >= 1  # the lookup by client order id


@pytest.mark.parametrize(
    ("ed25519", "extra"),
    [(False, ""), (True, "      order_entry: rest")],
    ids=["hmac-key-not-logged-on", "order-entry-rest"],
)
def test_orders_go_over_rest_where_the_websocket_api_is_not_logged_on_or_not_wanted(
    *,
    venue: BinanceVenue,
    clock: ManualClock,
    tmp_path: Path,
    key_pair: tuple[str, str],
    ed25519: bool,
    extra: str,
) -> None:
    with ws_node(venue, clock, tmp_path, key_pair, ed25519=ed25519, extra=extra) as h:
        filled = h.do(market(Side.SELL, "0.1"))
        h.wait_status(filled, OrderStatus.FILLED)
        resting = h.do(limit(Side.BUY, "48000.00", "0.2"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(resting))
        h.wait_status(resting, OrderStatus.CANCELED)
        assert_placed_once(h)
        calls = venue.calls()
    assert calls["POST order"] == 2 and calls["DELETE order"] == 1
    assert "order.place" not in calls and "order.cancel" not in calls
    assert calls.get("session.logon", 0) == (1 if ed25519 else 0)


def test_a_taker_orders_fills_come_with_its_answer_and_count_once(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path, key_pair: tuple[str, str]
) -> None:
    """order.place asks for a FULL answer, which carries the trades a taker order made:
    the order is filled from the answer while the account's stream is held back, and the
    stream's own reports of the same trades, released later, change nothing."""
    with ws_node(venue, clock, tmp_path, key_pair) as h:
        venue.reorder_events(100)  # the stream says nothing until released
        coid = h.do(market(Side.BUY, "0.3"))
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.3")
        assert h.position("BTCUSDT") == D("0.3")
        venue.release_events()
        h.sync()
        assert_placed_once(h)
        assert h.position("BTCUSDT") == D("0.3")
        assert len(venue.trades()) >= 1


def test_placement_fills_read_binances_documented_full_answer() -> None:
    # The codec is private: its reading of the FULL answer is checked directly here.
    from tradenode.brokers.binance._codec import parse_order, placement_fills

    # rest-api.md / web-socket-api.md "Response FULL" (order.place), trimmed to the fields read.
    answer = {
        "symbol": "BTCUSDT",
        "orderId": 28,
        "orderListId": -1,
        "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
        "transactTime": 1507725176595,
        "price": "0.00000000",
        "origQty": "10.00000000",
        "executedQty": "10.00000000",
        "cummulativeQuoteQty": "10.00000000",
        "status": "FILLED",
        "timeInForce": "GTC",
        "type": "MARKET",
        "side": "SELL",
        "workingTime": 1507725176595,
        "selfTradePreventionMode": "NONE",
        "fills": [
            {
                "price": "4000.00000000",
                "qty": "1.00000000",
                "commission": "4.00000000",
                "commissionAsset": "USDT",
                "tradeId": 56,
            },
            {
                "price": "3999.00000000",
                "qty": "5.00000000",
                "commission": "19.99500000",
                "commissionAsset": "USDT",
                "tradeId": 57,
            },
        ],
    }
    order = parse_order(answer, broker="binance")
    fills = placement_fills("binance", order, answer)
    assert [trade_id for trade_id, _ in fills] == [56, 57]
    first = fills[0][1]
    assert first.execution_id == "binance-BTCUSDT-56"
    assert (first.side, first.last_quantity, first.last_price) == (Side.SELL, D(1), D(4000))
    assert (first.commission, first.commission_asset) == (D(4), "USDT")
    assert first.ts_ns == 1507725176595 * 1_000_000
    assert placement_fills("binance", order, {**answer, "fills": []}) == []
    without = {key: value for key, value in answer.items() if key != "fills"}
    assert placement_fills("binance", order, without) == []
    with pytest.raises(MalformedPayloadError):
        placement_fills("binance", order, {**answer, "fills": [{"price": "1"}]})


@pytest.mark.parametrize("ed25519", [True, False], ids=["websocket-api", "rest"])
def test_the_oms_hears_each_order_accepted_once_from_the_answer_or_the_stream(
    venue: BinanceVenue,
    clock: ManualClock,
    tmp_path: Path,
    key_pair: tuple[str, str],
    ed25519: bool,
) -> None:
    """The placement's answer and the account stream's NEW both say "accepted": the
    OMS is told once per order (one message, one journal record fewer), a resting
    order and its cancel/replace alike. The stream's trades follow its NEW on the
    same connection, so once the last fill is in, every NEW has been read."""
    with ws_node(venue, clock, tmp_path, key_pair, ed25519=ed25519) as h:
        h.sync()
        before = h.node.system.messages_handled()
        resting = h.do(limit(Side.BUY, "49900.00", "0.2"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        replacement = h.do(lambda ctx: ctx.modify_order(resting, price=D("49950.00")))
        assert replacement is not None
        h.wait_status(replacement, OrderStatus.ACCEPTED)
        venue.set_price("BTCUSDT", D("49800.00"))
        h.wait_status(replacement, OrderStatus.FILLED)
        h.sync()
        after = h.node.system.messages_handled()
        assert_placed_once(h)
        key = (h.node.oms.path, "OrderAccepted")
    assert after.get(key, 0) - before.get(key, 0) == 2  # two orders, each accepted once
