"""The broker actor contract: what every venue adapter's actor speaks.

A circuit breaker sits in front of each broker actor and numbers every
command it forwards (``BrokerRequest.seq``); the broker answers each one with
exactly one ``BrokerReply`` saying how the *transport* fared, and sends the
venue's business answers (accepts, fills, rejections, status reports) to the
OMS as ordinary messages from ``tradenode.messages``. Keeping the two apart is
what lets the breaker count transport failures without ever mistaking
"insufficient funds" for an outage.

Lifecycle: a broker actor connects and reconciles in ``on_start`` (open
orders, fills since the last one it emitted), so by the time it handles its
first request it agrees with the venue. When the connection is lost it
raises; its supervisor restarts it with backoff and the requests that arrived
meanwhile wait in its mailbox, in order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..messages._market import MarketTrade
from ..messages._messages import (
    CancelAllOrders,
    CancelOrder,
    ModifyOrder,
    OrderStatusReport,
    QueryOrder,
    Quote,
    SubmitOrder,
)

if TYPE_CHECKING:
    from ..supervision import Address

__all__ = [
    "AcceptanceWindow",
    "BrokerCommand",
    "BrokerReply",
    "BrokerRequest",
    "Outcome",
    "QuoteSubscription",
    "RateObservation",
    "TradeSubscription",
]

BrokerCommand = SubmitOrder | CancelOrder | ModifyOrder | QueryOrder | CancelAllOrders


class Outcome(enum.Enum):
    """How a request fared at the transport level."""

    OK = "ok"
    """The venue answered; its business answer went to the OMS."""
    REJECTED = "rejected"
    """The venue answered no (a business rejection): not a transport failure."""
    NOT_FOUND = "not_found"
    """A query found no such order at the venue (the venue answered)."""
    TRANSPORT = "transport"
    """The request may or may not have reached the venue: outcome unknown."""
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    BANNED = "banned"

    @property
    def venue_answered(self) -> bool:
        # Identity tests: the breaker asks this of every reply, and a tuple or
        # set membership test would build the tuple or hash the member in Python.
        # Module globals, not ``Outcome.OK``: a member read off its enum class
        # pays ``EnumType``'s Python-level ``__getattr__`` hook (~80 ns each).
        return self is _OK or self is _REJECTED or self is _NOT_FOUND


_OK = Outcome.OK
_REJECTED = Outcome.REJECTED
_NOT_FOUND = Outcome.NOT_FOUND


@dataclass(frozen=True, slots=True)
class BrokerRequest:
    """One numbered command; ``deadline`` is when the breaker stops waiting for it.

    A request can sit in a restarting broker's mailbox past its deadline; by
    then the breaker has treated it as timed out and may already have queried
    and re-sent the order under the same client order id. A broker must not
    send such a stale request to the venue (it would be a second submission):
    it answers ``TIMEOUT`` instead. ``deadline`` is on the node's monotonic clock.
    """

    seq: int
    command: BrokerCommand
    reply_to: Address
    deadline: float | None = None

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


@dataclass(frozen=True, slots=True)
class AcceptanceWindow:
    """How long after a request's deadline the venue may still accept it.

    This is what makes a re-send safe. A submit whose answer was lost may
    still be on its way (held in a proxy, a queue, the venue's gateway); a
    query that finds nothing proves only that it has not arrived *yet*. A
    venue that refuses a request older than some window (Binance: the
    signed ``timestamp`` plus ``recvWindow``, checked again before the
    matching engine) gives a moment after which the original can never be
    accepted: the request's deadline (a broker never sends a request past
    it) plus ``seconds`` plus ``margin`` for the clocks' disagreement. Only
    a query that finds nothing after that moment lets the breaker send the
    order again under the same id. A venue without such a window declares
    none, and its orders of unknown outcome are never re-sent blindly: they
    stay unknown and are reconciled. Times are on the node's monotonic clock.
    """

    seconds: float
    margin: float = 0.0

    def __post_init__(self) -> None:
        for name in ("seconds", "margin"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ValueError(f"AcceptanceWindow.{name}={value!r}: must be finite and >= 0")

    def closes_at(self, deadline: float) -> float:
        """When a request with this ``deadline`` can no longer be accepted."""
        return deadline + self.seconds + self.margin


@dataclass(frozen=True, slots=True)
class RateObservation:
    """What a venue said about one of its rate counters in a response's headers.

    ``sent_at`` is when the request left, on the node's monotonic clock, so
    the breaker's limiter can add what it sent since (see ``WeightedLimiter``).
    """

    counter: str
    used: float
    limit: float
    window_seconds: float
    sent_at: float


@dataclass(frozen=True, slots=True)
class BrokerReply:
    seq: int
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None
    report: OrderStatusReport | None = None
    rates: tuple[RateObservation, ...] = ()


@dataclass(frozen=True, slots=True)
class QuoteSubscription:
    """Tell ``subscriber`` every ``Quote`` for ``symbols`` (all symbols when empty)."""

    subscriber: Address
    symbols: tuple[str, ...] = ()

    def wants(self, quote: Quote) -> bool:
        return not self.symbols or quote.symbol in self.symbols


@dataclass(frozen=True, slots=True)
class TradeSubscription:
    """Tell ``subscriber`` every ``MarketTrade`` of the venue's public tape for
    ``symbols`` (all symbols when empty), where the venue declares
    ``MarketDataKind.TRADES``. One subscription per subscriber: a new one
    replaces its earlier one (a restarted actor subscribes again without
    counting the tape twice); it ends when the subscriber stops for good."""

    subscriber: Address
    symbols: tuple[str, ...] = ()

    def wants(self, trade: MarketTrade) -> bool:
        return not self.symbols or trade.symbol in self.symbols
