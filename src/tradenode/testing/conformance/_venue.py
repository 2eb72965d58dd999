"""What the conformance suite needs from a venue: its local fake, its own books, its faults.

An adapter's tests implement :class:`ConformanceVenue` for the adapter's
local fake venue (the embedded paper venue, the local Binance, a user's
toy venue) and run :class:`~tradenode.testing.conformance.ConformanceSuite`
against it. The suite reaches the venue in two ways only: through a running
node (the adapter under test, attached from :meth:`ConformanceVenue.venue_config`)
and through this object, as a third party reading the venue's own books or
making the venue misbehave on purpose.

A hook the venue cannot offer raises :class:`NotSupported` with the reason;
the checks that need it are then skipped with that reason, never passed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...messages import OrderType, SubmitOrder
from ...supervision import ManualClock
from ..campaign import CampaignVenue
from ..campaign._venue import VenueFill, VenueOrder

__all__ = [
    "ConformanceVenue",
    "Instrument",
    "NotSupported",
    "OrderRecipe",
    "VenueFill",
    "VenueOrder",
    "default_recipe",
]


class NotSupported(Exception):
    """Raised by a :class:`ConformanceVenue` hook the venue cannot offer.

    The suite skips every check that needs the hook, naming the venue, the
    hook and ``reason``: a venue without 429s (the embedded paper venue) is
    skipped on the Retry-After check, never reported as passing it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Instrument:
    """The symbol the suite trades and the numbers that make valid orders on it.

    ``reference_price`` is where the venue's market is when it starts (its
    last price). ``quantity`` is a valid order quantity that one market
    order fills completely and the account can afford to buy several times
    over; ``large_quantity`` is larger than what one price move through a
    resting limit order fills (so the order fills partially first).
    ``tick_size`` and ``lot_size`` are the venue's increments for prices and
    quantities.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    reference_price: Decimal
    tick_size: Decimal
    lot_size: Decimal
    quantity: Decimal
    large_quantity: Decimal

    def price(self, fraction: str) -> Decimal:
        """``reference_price * fraction``, rounded down to the tick."""
        raw = self.reference_price * Decimal(fraction)
        return (raw / self.tick_size).to_integral_value(rounding="ROUND_FLOOR") * self.tick_size


class ConformanceVenue(abc.ABC):
    """An adapter's local fake venue, as the conformance suite drives it.

    One object per test: :meth:`start` starts a fresh fake (its books empty,
    its balances the initial ones), :meth:`stop` ends it. Every method is
    called from the test's thread. The node and the fake share one
    :class:`ManualClock` (given to :meth:`start`): Retry-After, backoffs and
    acceptance windows then mean the same seconds on both sides.

    Required: :attr:`name`, :meth:`start`, :meth:`stop`,
    :meth:`venue_config`, :meth:`instrument`, :meth:`set_price`,
    :meth:`orders`, :meth:`fills`, :meth:`position`. Every other hook
    defaults to :class:`NotSupported`; override the ones the fake can do.
    """

    # ------------------------------------------------------------- lifecycle

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The venue's name in the node (``VenueConfig.name``)."""

    @abc.abstractmethod
    def start(self, clock: ManualClock) -> None:
        """Start a fresh fake venue that reads ``clock`` for its own time."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the fake venue (idempotent)."""

    @abc.abstractmethod
    def venue_config(self) -> Mapping[str, Any]:
        """The node's venue config for the fake, as plain data: ``name``, ``kind``
        and the kind's settings section pointing at the fake (``{"name": ...,
        "kind": "binance", "binance": {...}}``). The suite adds its own
        ``breaker`` and ``backoff`` sections (leave them out)."""

    def provided(self) -> object | None:
        """The object handed to ``Node.add_venue(config, venue=...)`` (an in-process
        venue like a ``PaperVenue``, which then outlives node incarnations);
        None (the default) for a venue reached over the network."""
        return None

    @abc.abstractmethod
    def instrument(self) -> Instrument:
        """The symbol the suite trades, with valid prices and quantities."""

    # ----------------------------------------------------------------- market

    @abc.abstractmethod
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the venue's last price to ``price`` now; resting and conditional
        orders at the venue fill or trigger as the venue's matching says."""

    def fills_resting_orders_in_parts(self) -> None:
        """Return if a price move through a resting LIMIT of ``large_quantity`` fills
        only part of it (the default: an exchange's book); raise :class:`NotSupported`
        if the venue fills a resting order whole or not at all (a dealer such as
        OANDA). The partial-fill checks are then skipped, and the stream-dropped
        check drops the stream while the order rests and fills it whole."""
        return None

    # ------------------------------------------------------- the venue's books

    @abc.abstractmethod
    def orders(self) -> Sequence[VenueOrder]:
        """Every order the venue's books hold (open and closed), read as a third party."""

    def open_orders(self) -> Sequence[VenueOrder]:
        """The venue's open orders (default: :meth:`orders` that are open)."""
        return [order for order in self.orders() if order.is_open]

    def order(self, client_order_id: str) -> VenueOrder | None:
        """The venue's order of that client id (the latest one), or None."""
        found = [o for o in self.orders() if o.client_order_id == client_order_id]
        return found[-1] if found else None

    @abc.abstractmethod
    def fills(self) -> Sequence[VenueFill]:
        """Every execution in the venue's books, ``execution_id`` spelled as the
        node's ``OrderFilled.execution_id`` spells it."""

    @abc.abstractmethod
    def position(self, symbol: str) -> Decimal:
        """The account's position in ``symbol`` as the venue's own account shows it:
        for a spot account, how much the base asset's balance (free and locked)
        changed since the venue started; for a derivatives account, its position."""

    def submissions(self) -> Mapping[str, int]:
        """How many placement requests named each client order id at the venue
        (refused ones included): proves nothing was sent twice."""
        raise NotSupported("the venue does not count placement requests")

    # ----------------------------------------------------------------- faults

    def drop_stream(self) -> None:
        """Cut the node's connection(s) to the venue now (its event stream included);
        the venue's books carry on."""
        raise NotSupported("the venue cannot drop its connections")

    def lose_next_submit_response(self) -> None:
        """Process the next order placement but lose its answer: the node cannot
        know whether the order exists (an unknown outcome)."""
        raise NotSupported("the venue cannot lose a placement's answer")

    def rate_limit_next_request(self, retry_after: int) -> None:
        """Answer the next request with 429 (or the venue's equivalent) and a
        Retry-After of ``retry_after`` seconds, without processing it."""
        raise NotSupported("the venue has no rate-limit answer with Retry-After")

    def corrupt_next_event(self) -> None:
        """Deliver one malformed payload on the node's event stream (before the next event)."""
        raise NotSupported("the venue cannot deliver a malformed payload")

    def malformed_payloads(self, connection_status: Mapping[str, Any]) -> int:
        """How many malformed payloads the adapter counted, from its section of
        ``Node.status()["connections"]`` (default: its ``malformed_payloads`` key)."""
        count = connection_status.get("malformed_payloads")
        if not isinstance(count, int):
            raise AssertionError(
                f"the adapter's status section has no malformed_payloads count: {connection_status!r}"
            )
        return count

    def place_directly(self, order: SubmitOrder) -> None:
        """Place ``order`` at the venue as another client would (or a crashed node
        had): MARKET executes at once, LIMIT rests GTC at its price. The node's
        journal knows nothing of it."""
        raise NotSupported("the venue cannot take orders from another client")

    def secrets(self) -> tuple[str, ...]:
        """The credentials the node's config holds (API secret, private key, ...):
        no log line, repr, status or journal record may contain one."""
        raise NotSupported("the venue takes no credentials")

    # ------------------------------------------------------------- the campaign

    def campaign_venue(self) -> CampaignVenue:
        """The venue for the out-of-process randomized exactly-once campaign
        (:mod:`tradenode.testing.campaign`)."""
        raise NotSupported("the venue has no out-of-process campaign")

    # ------------------------------------------------------------- order types

    def order_recipe(self, order_type: OrderType) -> OrderRecipe:
        """How to make an order of ``order_type`` rest at the venue, then execute.

        The default works for a venue whose matching follows the last price
        (see :class:`~tradenode.messages.OrderType`): a BUY that rests 2 %
        below (limits) or triggers 2 % above / below (stops / if-touched) the
        reference price, and the price path that executes it."""
        return default_recipe(self.instrument(), order_type)


@dataclass(frozen=True, slots=True)
class OrderRecipe:
    """An order of one type the venue takes, and how to make it execute.

    ``fields`` are ``StrategyContext.submit_order``'s keyword arguments
    (``price``, ``stop_price``, ``trailing_offset``, ...; not the symbol, side,
    quantity or type); ``rests`` says whether the order waits at the venue
    (everything but MARKET); ``fill_path`` is the prices :meth:`ConformanceVenue.set_price`
    moves through, in order, until the order has filled.
    """

    order_type: OrderType
    fields: Mapping[str, Any]
    rests: bool
    fill_path: tuple[Decimal, ...]


def default_recipe(instrument: Instrument, order_type: OrderType) -> OrderRecipe:
    """A BUY of ``order_type`` away from ``instrument.reference_price`` and the path that fills it."""
    p = instrument.price
    if order_type is OrderType.MARKET:
        return OrderRecipe(order_type, {}, rests=False, fill_path=())
    if order_type is OrderType.LIMIT:
        return OrderRecipe(order_type, {"price": p("0.98")}, True, (p("0.975"),))
    if order_type is OrderType.STOP:
        # A buy stop triggers once the last price reaches it from below.
        return OrderRecipe(order_type, {"stop_price": p("1.02")}, True, (p("1.025"),))
    if order_type is OrderType.STOP_LIMIT:
        fields = {"stop_price": p("1.02"), "price": p("1.03")}
        return OrderRecipe(order_type, fields, True, (p("1.021"), p("1.025")))
    if order_type is OrderType.MARKET_IF_TOUCHED:
        return OrderRecipe(order_type, {"stop_price": p("0.98")}, True, (p("0.975"),))
    if order_type is OrderType.LIMIT_IF_TOUCHED:
        fields = {"stop_price": p("0.98"), "price": p("0.979")}
        return OrderRecipe(order_type, fields, True, (p("0.979"), p("0.975")))
    if order_type is OrderType.TRAILING_STOP:
        # A buy trailing stop follows the price down and triggers when it
        # bounces back by the offset: down 2 %, then back up 3 %.
        offset = p("0.01")
        path = (p("0.98"), p("1.01"), p("1.03"))
        return OrderRecipe(order_type, {"trailing_offset": offset}, True, path)
    raise NotSupported(f"no default recipe for {order_type.value}")  # pragma: no cover
