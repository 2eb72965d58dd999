"""The account's stream repeats what a FULL ``order.place`` answer already told the OMS.

The session's reader tells the OMS an order accepted, with the trades it made on
arrival, straight from the placement's answer; the stream then reports the same
acceptance (NEW) and the same trades (same trade ids, so the same execution ids).
The actor builds and tells nothing for those repeats (the OMS would drop them), but
every trade the answer did not carry is still told, once.

The actor's handlers are driven directly, in the order the reader hands them over
(the placement's bookkeeping, then the stream's reports), with a recorder for the OMS.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradenode.actors import BrokerRequest
from tradenode.brokers.binance import (
    BinanceBroker,
    BinanceCredentials,
    BinanceEndpoints,
    BinanceLink,
)

# The placement's bookkeeping message and the tracked order are the actor's internals,
# driven here without a session.
from tradenode.brokers.binance._actor import TrackedOrder, _Answered

# The codec's parsers build what the reader hands the actor from a real answer.
from tradenode.brokers.binance._codec import execution_id, parse_order, placement_fills

# A venue answer as the session hands it over.
from tradenode.brokers.binance._session import RestResult
from tradenode.messages import OrderAccepted, OrderFilled, OrderType, Side, SubmitOrder

BROKER = "binance"
COID = "repeat-1"
ORDER_ID = 4242


class Told:
    """Plays the OMS (and the breaker): what the actor tells, in order."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def tell(self, message: Any) -> None:
        self.seen.append(message)


def _broker(told: Told) -> BinanceBroker:
    return BinanceBroker(
        BROKER,
        credentials=BinanceCredentials("key", "secret"),
        endpoints=BinanceEndpoints("http://venue", "ws://venue", "ws://venue"),
        reports_to=told,  # type: ignore[arg-type]
        link=BinanceLink(),
        symbols=("BTCUSDT",),
    )


def _answer(status: str, executed: str, trade_ids: tuple[int, ...]) -> dict[str, Any]:
    """A FULL answer to a 0.003 BTC LIMIT BUY that took ``trade_ids`` on arrival."""
    return {
        "symbol": "BTCUSDT",
        "orderId": ORDER_ID,
        "orderListId": -1,
        "clientOrderId": COID,
        "transactTime": 1700000000000,
        "price": "50000.00",
        "origQty": "0.003",
        "executedQty": executed,
        "cummulativeQuoteQty": str(Decimal(executed) * 50000),
        "status": status,
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "workingTime": 1700000000000,
        "fills": [
            {
                "price": "50000.00",
                "qty": "0.001",
                "commission": "0",
                "commissionAsset": "BTC",
                "tradeId": trade_id,
            }
            for trade_id in trade_ids
        ],
    }


def _report(kind: str, status: str, cumulative: str, trade_id: int = -1) -> dict[str, Any]:
    """The stream's executionReport for the same order."""
    traded = kind == "TRADE"
    return {
        "e": "executionReport",
        "E": 1700000000001,
        "s": "BTCUSDT",
        "c": COID,
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "0.003",
        "p": "50000.00",
        "P": "0.00",
        "F": "0.00",
        "g": -1,
        "C": "",
        "x": kind,
        "X": status,
        "r": "NONE",
        "i": ORDER_ID,
        "l": "0.001" if traded else "0",
        "z": cumulative,
        "L": "50000.00" if traded else "0",
        "n": "0",
        "N": "BTC" if traded else None,
        "T": 1700000000000,
        "t": trade_id,
        "v": 3,
        "I": 1,
        "w": not traded,
        "m": False,
        "M": False,
        "O": 1700000000000,
        "Z": str(Decimal(cumulative) * 50000),
        "Y": "50.00" if traded else "0",
        "Q": "0",
        "W": 1700000000000,
        "V": "NONE",
    }


def _placed(broker: BinanceBroker, told: Told, body: dict[str, Any]) -> None:
    """What the reader and the actor do with a placement answered on the fast path:
    the reader has told the OMS (not recorded here); the actor keeps the books."""
    command = SubmitOrder(
        client_order_id=COID,
        strategy_id="s",
        venue=BROKER,
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.003"),
        price=Decimal("50000.00"),
    )
    broker.link.orders[COID] = TrackedOrder("BTCUSDT")
    order = parse_order(body, broker=BROKER)
    fills = tuple(placement_fills(BROKER, order, body))
    request = BrokerRequest(1, command, told)  # type: ignore[arg-type]
    broker._on_answered(_Answered(request, RestResult(200, body, {}, 0.0), order, fills))
    assert told.seen == []


def test_the_streams_repeats_of_an_answered_partial_fill_are_not_told() -> None:
    told = Told()
    broker = _broker(told)
    _placed(broker, told, _answer("PARTIALLY_FILLED", "0.002", (71, 72)))
    broker._on_user_event(_report("NEW", "NEW", "0"))
    broker._on_user_event(_report("TRADE", "PARTIALLY_FILLED", "0.001", 71))
    broker._on_user_event(_report("TRADE", "PARTIALLY_FILLED", "0.002", 72))
    assert told.seen == []
    # A trade the answer did not carry: told once, and the order is settled.
    broker._on_user_event(_report("TRADE", "FILLED", "0.003", 73))
    broker._on_user_event(_report("TRADE", "FILLED", "0.003", 73))
    fills = [m for m in told.seen if isinstance(m, OrderFilled)]
    assert [f.execution_id for f in fills] == [execution_id(BROKER, "BTCUSDT", 73)]
    assert fills[0].last_quantity == Decimal("0.001")
    assert not any(isinstance(m, OrderAccepted) for m in told.seen)
    assert COID not in broker.link.orders


def test_the_streams_repeats_of_an_answered_taker_order_are_not_told() -> None:
    """A FULL answer settles a taker order: every repeat after it is dropped, the
    order stays forgotten."""
    told = Told()
    broker = _broker(told)
    _placed(broker, told, _answer("FILLED", "0.003", (81, 82, 83)))
    assert COID not in broker.link.orders
    broker._on_user_event(_report("NEW", "NEW", "0"))
    for cumulative, trade_id in (("0.001", 81), ("0.002", 82), ("0.003", 83)):
        status = "FILLED" if trade_id == 83 else "PARTIALLY_FILLED"
        broker._on_user_event(_report("TRADE", status, cumulative, trade_id))
    assert told.seen == []
    assert COID not in broker.link.orders


def test_a_trade_never_told_is_told_even_after_the_order_was_forgotten() -> None:
    """Only a repeat is skipped: a trade id the link never forwarded goes to the OMS."""
    told = Told()
    broker = _broker(told)
    _placed(broker, told, _answer("FILLED", "0.003", (91, 92, 93)))
    broker._on_user_event(_report("TRADE", "FILLED", "0.003", 94))
    fills = [m for m in told.seen if isinstance(m, OrderFilled)]
    assert len(fills) == 1 and fills[0].client_order_id == COID
