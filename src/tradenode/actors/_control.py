"""Control messages between the node's actors: subscriptions, queries, the kill switch.

Trading commands and events live in ``tradenode.messages``; these are the
in-process plumbing around them and never cross the wire.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from ..messages._enums import OrderStatus, TradingState
from ..messages._messages import OrderSubmitted, SubmitOrder
from ..supervision import Address

__all__ = [
    "AcceptBalanceBaseline",
    "EngageKillSwitch",
    "GetFills",
    "GetMetrics",
    "GetOpenOrders",
    "GetOrder",
    "GetOrders",
    "GetPositions",
    "GetRiskStatus",
    "PositionDrift",
    "Promise",
    "RecordAcceptanceWindow",
    "RecordAudit",
    "Routed",
    "SetTradingState",
    "Subscribe",
    "TakeSnapshot",
    "Unsubscribe",
    "VenueBalances",
    "VenueCursor",
]

T = TypeVar("T")


class Promise(Generic[T]):
    """A one-shot result an actor fulfils later, for callers outside the actors.

    An actor must never block waiting for another; when an answer needs
    several round trips (a kill switch waiting for every cancel), the caller
    passes a promise in the message and waits on it from its own thread.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: T | None = None

    def fulfil(self, value: T) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> T:
        if not self._done.wait(timeout):
            raise TimeoutError(f"no result within {timeout}s")
        assert self._value is not None
        return self._value


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Receive order events (of one strategy, or all when ``strategy_id`` is None).

    ``kinds`` names the message types the subscriber handles (None: every one):
    each event is a message to the subscriber's thread, so an actor that acts
    on two kinds of event should not be woken for the other six of every order.
    """

    subscriber: Address
    strategy_id: str | None = None
    kinds: tuple[type, ...] | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscriber: Address


@dataclass(frozen=True, slots=True)
class GetPositions:
    strategy_id: str | None = None
    venue: str | None = None


@dataclass(frozen=True, slots=True)
class GetOpenOrders:
    venue: str | None = None
    strategy_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetFills:
    client_order_id: str | None = None
    strategy_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetOrder:
    client_order_id: str


@dataclass(frozen=True, slots=True)
class GetOrders:
    """Retained orders, open or finished (fills or none), newest first: the
    operator's order list (the OMS answers ``TrackedOrderView``s)."""

    venue: str | None = None
    strategy_id: str | None = None
    status: OrderStatus | None = None
    limit: int = 500


@dataclass(frozen=True, slots=True)
class GetMetrics:
    pass


@dataclass(frozen=True, slots=True)
class SetTradingState:
    state: TradingState
    reason: str
    then_tell_oms: Any = None
    """A message for the OMS, told right after the change: it arrives behind
    every order this guard approved before the change (the kill switch's
    ``EngageKillSwitch``, so that no order approved before the halt escapes it)."""


@dataclass(frozen=True, slots=True)
class VenueBalances:
    """Broker to OMS after each reconciliation: the account's total balance per
    asset, and each symbol's base asset, for the position check."""

    venue: str
    totals: Mapping[str, Decimal]
    base_assets: Mapping[str, str]
    ts_ns: int = 0


@dataclass(frozen=True, slots=True)
class VenueCursor:
    """Broker to OMS: everything in the venue's history ``scope`` up to ``cursor``
    has been sent to the OMS (sent before this message, so the OMS journals the
    cursor only after what it covers). A new process starts its sweep there."""

    venue: str
    scope: str
    cursor: str


@dataclass(frozen=True, slots=True)
class RecordAcceptanceWindow:
    """Node to OMS when a venue connects: journal how long a request sent from
    now on may still be accepted there (deadline + ``seconds``), so a later
    process resolving an order this one sent waits long enough."""

    venue: str
    seconds: Decimal


@dataclass(frozen=True, slots=True)
class AcceptBalanceBaseline:
    """Operator to OMS: take the venue's current balance of ``asset`` as explained.

    A position drift stays a drift, reported at every check, until a person
    says the venue's account is right (a deposit, a manual trade): only then
    does the baseline move, and the move is journaled. ``asset`` None accepts
    every asset of the venue."""

    venue: str
    asset: str | None = None
    reason: str = "accepted by the operator"


@dataclass(frozen=True, slots=True)
class PositionDrift:
    """OMS to subscribers: the venue's account moved by ``venue_change`` of
    ``asset`` while our fills moved it by ``our_change``. Confirmed by two
    reconciliations in a row, so a fill in flight during one is not a drift."""

    venue: str
    asset: str
    our_change: Decimal
    venue_change: Decimal
    ts_ns: int = 0


@dataclass(frozen=True, slots=True)
class RecordAudit:
    """Asked of the OMS: journal an operator's action (``EntryKind.AUDIT``) in line
    with its own records; answers the record's sequence number (None: no journal)."""

    who: str
    action: str
    detail: str
    result: str


@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    """Asked of the OMS: snapshot the whole state now (between two messages, as the
    periodic snapshot); answers the sequence number it covers (None: no journal)."""


@dataclass(frozen=True, slots=True)
class GetRiskStatus:
    pass


@dataclass(frozen=True, slots=True)
class EngageKillSwitch:
    flatten: bool
    done: Promise[Any] = field(compare=False)
    started_ns: int = 0
    confirm_within: float = 10.0
    """Seconds (node clock) each phase waits for the venues to confirm."""


@dataclass(frozen=True, slots=True)
class Routed:
    """OMS to subscribers: this order (new, a replacement, or a kill-switch flatten)
    was handed to its venue. Distinct from ``SubmitOrder``, which is a request."""

    order: SubmitOrder
    submitted: OrderSubmitted | None = None
    """For a new order, the ``OrderSubmitted`` its strategy hears (the strategy's actor
    hands it to ``on_order_update``): one event per routing, not two. None for a
    replacement or a kill-switch flatten order, which were never announced so."""
