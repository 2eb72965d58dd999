"""A decision on a named venue reads its one ``(venue, symbol)`` key directly.

``execute_decision`` works out the order that takes the position to the
target: the target less the position less what the open orders will add.
For a named venue that is one key; the fast branch reads it without
building ``keys()`` and summing over it, and must count exactly the same
positions and open orders (not another venue's, not another symbol's).
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

# Capabilities and client ids are internal to the bridge and the adapters.
from tradenode.actors._capabilities import ClientIdRules, VenueCapabilities

# Capabilities and client ids are internal to the bridge and the adapters.
from tradenode.actors._client_ids import ClientOrderIdFamily

# The bridge's view and context are internal: driven here with a stand-in actor.
from tradenode.actors._strategy import StrategyActor, StrategyContext, _View
from tradenode.messages import (
    DecisionAction,
    ExecutionDecision,
    OrderType,
    Side,
    SubmitOrder,
)


def _resting(coid: str, venue: str, symbol: str, side: Side, quantity: str) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT,
        quantity=D(quantity),
        price=D("100"),
    )


class _Strategy:
    strategy_id = "s1"
    venue = "paper"


class _Actor:
    """What ``execute_decision`` reads of the bridge, and the order it would submit."""

    def __init__(self) -> None:
        self.strategy = _Strategy()
        self.view = _View()
        self.submitted: list[dict[str, Any]] = []

    def keys(self, symbol: str, venue: str | None) -> tuple[tuple[str, str], ...]:
        raise AssertionError("a named venue's decision needs no keys()")

    def submit(self, **fields: Any) -> str:
        self.submitted.append(fields)
        return f"id-{len(self.submitted)}"


def _actor() -> _Actor:
    actor = _Actor()
    actor.view.positions.update(
        {
            ("paper", "BTCUSDT"): D("0.4"),
            ("other", "BTCUSDT"): D("9"),
            ("paper", "ETHUSDT"): D("-3"),
        }
    )
    for order in (
        _resting("a", "paper", "BTCUSDT", Side.BUY, "0.3"),
        _resting("b", "paper", "BTCUSDT", Side.SELL, "0.1"),
        _resting("c", "other", "BTCUSDT", Side.BUY, "5"),
        _resting("d", "paper", "ETHUSDT", Side.BUY, "7"),
    ):
        actor.view.open_orders[order.client_order_id] = order
    return actor


@pytest.mark.parametrize(
    ("action", "venue", "side", "quantity"),
    [
        # 1 - 0.4 - (0.3 - 0.1)
        (DecisionAction.LONG, None, Side.BUY, D("0.4")),
        (DecisionAction.LONG, "paper", Side.BUY, D("0.4")),
        # -1 - 0.4 - 0.2
        (DecisionAction.SHORT, "paper", Side.SELL, D("1.6")),
        # 0 - 0.4 - 0.2
        (DecisionAction.FLAT, None, Side.SELL, D("0.6")),
        # another venue's own position and orders: 1 - 9 - 5
        (DecisionAction.LONG, "other", Side.SELL, D("13")),
    ],
)
def test_the_order_counts_only_its_own_key(
    action: DecisionAction, venue: str | None, side: Side, quantity: D
) -> None:
    actor = _actor()
    context = StrategyContext(actor)  # type: ignore[arg-type]
    coid = context.execute_decision(
        ExecutionDecision(strategy_id="s1", symbol="BTCUSDT", action=action, size=D(1), venue=venue)
    )
    assert coid == "id-1"
    (fields,) = actor.submitted
    assert (fields["venue"], fields["symbol"]) == (venue or "paper", "BTCUSDT")
    assert (fields["side"], fields["quantity"]) == (side, quantity)


def test_a_decision_already_met_sends_nothing() -> None:
    actor = _actor()
    context = StrategyContext(actor)  # type: ignore[arg-type]
    # 0.4 held and 0.2 net pending: a LONG of 0.6 is already on its way.
    decision = ExecutionDecision(
        strategy_id="s1", symbol="BTCUSDT", action=DecisionAction.LONG, size=D("0.6")
    )
    assert context.execute_decision(decision) is None
    assert actor.submitted == []


class _Entry:
    def __init__(self, rules: ClientIdRules) -> None:
        self.capabilities = VenueCapabilities(client_ids=rules)


class _Directory:
    def __init__(self, entries: dict[str, _Entry]) -> None:
        self.entries = entries

    def venue(self, name: str) -> _Entry | None:
        return self.entries.get(name)


def test_ids_follow_each_venues_rules_whichever_venue_came_last() -> None:
    short = ClientIdRules(max_length=12, characters="0123456789abcdef")
    entries = {
        "core": _Entry(ClientIdRules()),
        "short": _Entry(short),
        # Equal rules, another object: the same generator (one counter per shape).
        "short2": _Entry(ClientIdRules(max_length=12, characters="fedcba9876543210")),
    }
    bridge = StrategyActor(_Strategy, _Directory(entries), id_prefix="k1")  # type: ignore[arg-type]
    reference = ClientOrderIdFamily("k1")
    venues = ["core", "short", "short", "short2", "core", "gone", "short2", "core", "gone"]
    for venue in venues:
        entry = entries.get(venue)
        rules = None if entry is None else entry.capabilities.client_ids
        assert bridge.next_client_order_id(venue) == reference.next(rules), venue
