"""The risk guard's decisions, without threads, I/O or a wall clock.

The risk guard actor owns one ``RiskEngine`` and asks it about every order
a strategy sends before the OMS may forward it. Keeping the rules here,
pure and driven by an injected clock, makes every limit testable at its
exact boundary and leaves the actor a thin shell that assembles a
``RiskContext`` from the OMS and publishes what the engine decides.

Checks run in a fixed order and the first failure wins, so a denial always
names the most basic problem: the trading state first (nothing else
matters when trading is halted), then what the venue itself would reject
(what its adapter does not declare it can do, then instrument, tick, lot,
minimum notional), then our own per-order limits,
then limits that depend on the books, and the rate throttle last, because
only an order that would otherwise be sent may spend a token.

An order *reduces* when it trades against the position of its
``(venue, symbol)`` and, together with the orders already resting on the
same side, cannot take the position through zero. Reducing orders are
never stopped by position, exposure or loss limits (stuck risk is worse
than the limit it breaches), and they are the only orders REDUCING admits.
Cancels are never refused, in any state: a cancel can only remove risk.
"""

from __future__ import annotations

import decimal
import math
from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, TypeVar

from tradenode._exceptions import TradingStateTransitionError
from tradenode.messages._enums import DenialCode, Side, TradingState
from tradenode.messages._messages import (
    CancelAllOrders,
    CancelOrder,
    ModifyOrder,
    OrderDenied,
    SubmitOrder,
    TradingStateChanged,
)

from ._capabilities import VenueCapabilities
from ._exposure import instrument_keys
from ._risk_limits import InstrumentRules, OpenOrders, RiskContext, RiskLimits, VenueSymbol

__all__ = [
    "OPERATOR_ONLY_TRANSITIONS",
    "RISK_DENIAL_CODES",
    "TRADING_STATE_TRANSITIONS",
    "RiskDecision",
    "RiskEngine",
    "TradingStateTransitionError",
]

_ACTIVE, _REDUCING, _HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
_BUY = Side.BUY

TRADING_STATE_TRANSITIONS: Mapping[TradingState, frozenset[TradingState]] = MappingProxyType(
    {
        _ACTIVE: frozenset({_REDUCING, _HALTED}),
        _REDUCING: frozenset({_ACTIVE, _HALTED}),
        _HALTED: frozenset({_ACTIVE, _REDUCING}),
    }
)
"""Every legal change of trading state; staying in the same state is a no-op, not a transition."""

OPERATOR_ONLY_TRANSITIONS: frozenset[tuple[TradingState, TradingState]] = frozenset(
    {(_HALTED, _ACTIVE), (_HALTED, _REDUCING)}
)
"""Leaving HALTED takes a person: a halt means something went wrong that code could not judge."""

_SEVERITY = MappingProxyType({_ACTIVE: 0, _REDUCING: 1, _HALTED: 2})

RISK_DENIAL_CODES: frozenset[DenialCode] = frozenset(
    {
        DenialCode.INVALID_ORDER,
        DenialCode.TRADING_HALTED,
        DenialCode.REDUCE_ONLY,
        DenialCode.UNSUPPORTED_BY_VENUE,
        DenialCode.UNKNOWN_INSTRUMENT,
        DenialCode.TICK_SIZE,
        DenialCode.LOT_SIZE,
        DenialCode.MIN_NOTIONAL,
        DenialCode.NO_MARKET_PRICE,
        DenialCode.MAX_ORDER_QUANTITY,
        DenialCode.MAX_ORDER_NOTIONAL,
        DenialCode.PRICE_COLLAR,
        DenialCode.MAX_POSITION,
        DenialCode.MAX_EXPOSURE,
        DenialCode.MAX_OPEN_ORDERS,
        DenialCode.DUPLICATE_ORDER,
        DenialCode.DAILY_LOSS_LIMIT,
        DenialCode.MAX_DRAWDOWN,
        DenialCode.RATE_LIMIT,
    }
)
"""The codes this engine can give; the others belong to the breaker and the OMS."""

_NS_PER_SECOND = 1_000_000_000
_ZERO = Decimal(0)
_BPS = Decimal(10_000)

#: Every check computes in this context, never the calling thread's, which
#: belongs to whoever runs the actor. The precision keeps products of venue
#: quantities and prices exact.
_CONTEXT = decimal.Context(
    prec=60,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

_T = TypeVar("_T")

_getcontext, _setcontext = decimal.getcontext, decimal.setcontext


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The engine's answer; ``code`` is for machines and ``reason`` for the people reading logs.

    ``state_change`` is set when this very check moved the trading state (a
    loss limit found breached), so the actor can publish it exactly once.
    """

    approved: bool
    code: DenialCode | None
    reason: str
    state_change: TradingStateChanged | None = None

    def __post_init__(self) -> None:
        if self.approved != (self.code is None):
            raise ValueError(
                f"RiskDecision: approved={self.approved} contradicts code={self.code!r}"
            )

    def denial(self, order: SubmitOrder, ts_ns: int = 0) -> OrderDenied:
        """The ``OrderDenied`` event this decision means for ``order``."""
        if self.code is None:
            raise ValueError("RiskDecision.denial: the order was approved")
        return OrderDenied(
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            code=self.code,
            reason=self.reason,
            ts_ns=ts_ns,
        )


class _Denied(Exception):
    """Unwinds the check sequence at the first failed check; never leaves the engine."""

    def __init__(self, code: DenialCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Candidate:
    """An order as it would rest at the venue, with the books it would join.

    ``others`` are the open orders on the same ``(venue, symbol)`` without
    this one (a modified order must not be counted twice), and ``leaves``
    is what this order could still add to the position. ``pending``,
    ``projected`` and ``reducing`` are worked out once, on construction
    (inside the engine's decimal context): several checks read them.
    """

    __slots__ = ("key", "leaves", "order", "others", "pending", "position", "projected", "reducing")

    def __init__(
        self,
        order: SubmitOrder,
        key: VenueSymbol,
        position: Decimal,
        others: OpenOrders,
        leaves: Decimal,
    ) -> None:
        self.order = order
        self.key = key
        self.position = position
        self.others = others
        self.leaves = leaves
        side = order.side
        # ``side.sign`` and ``others.pending(side)``, read without their Python calls.
        if side is _BUY:
            sign, pending = 1, others.buy_quantity
        else:
            sign, pending = -1, others.sell_quantity
        # What the other open orders on this order's side may still add.
        self.pending = pending
        # The position if every open order on this order's side fills, this one included.
        self.projected = position + sign * (pending + leaves)
        # Against the position, and with the orders on its side it cannot take it
        # through zero.
        self.reducing = position * sign < 0 and pending + leaves <= abs(position)

    def describe(self) -> str:
        order = self.order
        return f"{order.side.value} {order.quantity} {order.symbol} at {order.venue}"


@dataclass(frozen=True, slots=True)
class _Limited:
    """Which groups of checks a ``RiskLimits`` configures, worked out once: a check
    whose limits are all unset could never deny, and is not called."""

    instruments: bool
    per_order: bool
    books: bool
    open_orders: bool
    loss: bool

    @classmethod
    def of(cls, limits: RiskLimits) -> _Limited:
        return cls(
            instruments=bool(limits.instruments),
            per_order=limits.max_order_quantity is not None
            or limits.max_order_notional is not None
            or limits.price_collar_bps is not None,
            books=any(
                limit is not None
                for limit in (
                    limits.max_position_quantity,
                    limits.max_position_pct,
                    limits.max_symbol_exposure,
                    limits.max_total_exposure,
                )
            ),
            open_orders=limits.max_open_orders is not None,
            loss=limits.daily_loss_limit is not None or limits.max_drawdown is not None,
        )


class _Throttle:
    """A token bucket in integer nanoseconds and exact fractions.

    Exact arithmetic makes the boundary a fact rather than a float accident:
    at 20 orders a second, a token is back after exactly 50 ms. The bucket
    starts full at its first use; a clock that steps back refills nothing.
    """

    def __init__(self, rate: float | Decimal, capacity: int) -> None:
        self._rate = Fraction(rate) if isinstance(rate, Decimal) else Fraction(str(rate))
        self._capacity = Fraction(capacity)
        self._tokens = self._capacity
        self._stamp: int | None = None

    def ready(self, now: int) -> bool:
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            refill = Fraction(now - self._stamp) * self._rate / _NS_PER_SECOND
            self._tokens = min(self._capacity, self._tokens + refill)
            self._stamp = now
        return self._tokens >= 1

    def take(self) -> None:
        self._tokens -= 1

    def wait_ns(self) -> int:
        return max(0, math.ceil((1 - self._tokens) * _NS_PER_SECOND / self._rate))


class _RecentOrders:
    """When each distinct order was last approved, forgotten once its window has passed."""

    def __init__(self, window_ns: int) -> None:
        self._window = window_ns
        self._last: dict[Hashable, int] = {}
        self._expiry: deque[tuple[int, Hashable]] = deque()

    def age(self, key: Hashable, now: int) -> int | None:
        """Nanoseconds since the same order was approved, if that is inside the window."""
        while self._expiry and now - self._expiry[0][0] >= self._window:
            stamp, expired = self._expiry.popleft()
            if self._last.get(expired) == stamp:
                del self._last[expired]
        seen = self._last.get(key)
        if seen is None:
            return None
        elapsed = max(0, now - seen)
        return elapsed if elapsed < self._window else None

    def record(self, key: Hashable, now: int) -> None:
        self._last[key] = now
        self._expiry.append((now, key))


def _require(value: object, kind: type[_T], what: str) -> _T:
    if not isinstance(value, kind):
        raise _Denied(
            DenialCode.INVALID_ORDER,
            f"{what} must be a {kind.__name__}, not {type(value).__name__}",
        )
    return value


def _capabilities(value: object) -> VenueCapabilities | None:
    if value is None:
        return None
    return _require(value, VenueCapabilities, "capabilities")


def _names(members: frozenset[Any]) -> str:
    """Enum members by their values, in declaration order: ``GTC, IOC``."""
    if not members:
        return "none"
    kind = type(next(iter(members)))
    return ", ".join(member.value for member in kind if member in members)


def _not_reducing(candidate: _Candidate) -> str:
    """Why a candidate is not reducing, for a denial (built only when one is given)."""
    side = candidate.order.side.value
    return (
        f"{candidate.describe()} would not reduce position {candidate.position} "
        f"(already pending {side} {candidate.pending})"
    )


def _duplicate_key(order: SubmitOrder) -> Hashable:
    return (
        order.strategy_id,
        order.venue,
        order.symbol,
        order.side,
        order.order_type,
        order.quantity,
        order.price,
        order.stop_price,
        order.trailing_offset,
    )


class RiskEngine:
    """Approves or denies orders against ``RiskLimits`` and owns the trading state.

    The engine keeps what a snapshot cannot carry: the trading state, the
    rate throttle, recently approved orders and the denial counters. It is
    not thread-safe; one actor owns it, and because it holds no thread it
    can outlive that actor's incarnations (the node keeps it in a store).
    The state starts ACTIVE; only ``set_state`` and a breached loss limit
    change it, and a breach only ever escalates (ACTIVE to REDUCING to
    HALTED): recovering PnL never re-enables trading on its own.
    """

    def __init__(self, limits: RiskLimits, *, now_ns: Callable[[], int]) -> None:
        if not isinstance(limits, RiskLimits):
            raise TypeError(f"RiskEngine: limits must be RiskLimits, not {type(limits).__name__}")
        if not callable(now_ns):
            raise TypeError("RiskEngine: now_ns must be a callable returning nanoseconds")
        self._limits = limits
        self._now_ns = now_ns
        self._state = _ACTIVE
        self._state_reason = "initial state"
        self._denials: Counter[DenialCode] = Counter()
        self._approvals = 0
        burst = limits.burst
        rate = limits.max_orders_per_second
        self._throttle = None if rate is None or burst is None else _Throttle(rate, burst)
        window = limits.duplicate_window_ns
        self._recent = None if window is None else _RecentOrders(window)
        self._change: TradingStateChanged | None = None
        self._limited = _Limited.of(limits)
        self._decimal = _CONTEXT.copy()
        """The engine's own copy of ``_CONTEXT``, made current for each decision and the
        caller's restored after it: ``decimal.localcontext`` copied the context on
        every decision (a third of the screen of an order). Only the flags it
        records carry over between decisions; nothing reads them, and the
        precision, rounding and traps are never changed. One engine decides on
        one thread at a time (its actor's)."""

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def state_reason(self) -> str:
        """Why the engine is in its current state, as given when it got there."""
        return self._state_reason

    @property
    def watches_loss(self) -> bool:
        """Whether a loss limit is set: without one ``update_loss_state`` always answers
        None, so the guard need not build it a context on every position update."""
        return self._limits.daily_loss_limit is not None or self._limits.max_drawdown is not None

    @property
    def approvals(self) -> int:
        return self._approvals

    def counters(self) -> dict[DenialCode, int]:
        """Denials so far per code (codes never given are absent); a copy, safe to publish."""
        return dict(self._denials)

    def set_state(
        self, state: TradingState, reason: str, *, operator: bool = False
    ) -> TradingStateChanged | None:
        """Move to ``state``; the event to publish, or None when already there.

        ``operator=True`` is for a person's command (the control API, the
        kill switch); only it may leave HALTED. Raises
        ``TradingStateTransitionError`` for a change the table refuses, so
        an automatic caller that tries to resume trading fails loudly.
        """
        if not isinstance(state, TradingState):
            raise TypeError(f"set_state: state must be a TradingState, not {state!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"set_state: reason={reason!r} must be a non-empty string")
        if state is self._state:
            return None
        if state not in TRADING_STATE_TRANSITIONS[self._state]:
            raise TradingStateTransitionError(f"{self._state.value} -> {state.value} is not legal")
        if (self._state, state) in OPERATOR_ONLY_TRANSITIONS and not operator:
            raise TradingStateTransitionError(
                f"{self._state.value} -> {state.value} needs an operator (operator=True)"
            )
        return self._enter(state, reason, self._clock())

    def update_loss_state(self, ctx: RiskContext) -> TradingStateChanged | None:
        """Apply the loss limits to a fresh snapshot without an order to check.

        Orders apply them too, but only once they get that far; calling this
        on every PnL update makes a breach switch the state at once.
        """
        if not isinstance(ctx, RiskContext):
            raise TypeError(f"update_loss_state: ctx must be a RiskContext, not {ctx!r}")
        with decimal.localcontext(_CONTEXT):
            breach = self._loss_breach(ctx)
            if breach is None or not breach[2]:
                return None
            return self._escalate(breach[1], self._clock())

    def check_submit(
        self,
        order: SubmitOrder,
        ctx: RiskContext,
        *,
        capabilities: VenueCapabilities | None = None,
    ) -> RiskDecision:
        """Decide on a new order; never raises, and spends a rate token only when approving.

        ``capabilities`` are the order's venue's: what they do not declare is
        denied ``UNSUPPORTED_BY_VENUE``. None (venue unknown here) skips that
        check; the OMS refuses an order for a venue that is not there.
        """
        return self._decide(
            lambda now: f"{self._submit(order, ctx, capabilities, now).describe()} approved"
        )

    def screen_submit(
        self,
        order: SubmitOrder,
        ctx: RiskContext,
        capabilities: VenueCapabilities | None = None,
    ) -> RiskDecision | None:
        """``check_submit`` for a caller that reads an approval only for its state
        change (the risk guard): None for an approval that moved no trading state,
        the usual answer; otherwise the decision ``check_submit`` gives.

        The same checks in the same order, counted the same; what it skips is
        building the approval (a ``RiskDecision``, validated) and its reason, an
        f-string of the order's side, quantity and symbol that the guard never
        read (half of ``check_submit``'s time for a plain approval, microbenchmarked).
        """
        self._begin()
        outer = _getcontext()
        _setcontext(self._decimal)
        try:
            try:
                candidate = self._submit(order, ctx, capabilities, self._clock())
                change = self._change
                # Worded in the engine's context, as ``check_submit`` words it.
                reason = None if change is None else f"{candidate.describe()} approved"
            finally:
                _setcontext(outer)
        except Exception as exc:  # noqa: BLE001 - as ``_decide``: deny, never crash the guard
            return self._refusal(exc)
        self._approvals += 1
        if change is None or reason is None:
            return None
        return RiskDecision(True, None, reason, change)

    def check_parent(
        self,
        order: SubmitOrder,
        ctx: RiskContext,
        *,
        capabilities: VenueCapabilities | None = None,
    ) -> RiskDecision:
        """Decide on a parent order's total, as one order of its full quantity, before
        its first child: the order's own limits (trading state, venue, instrument,
        quantity, notional, collar), the position and exposure limits, and the loss
        state. No rate token, duplicate record or open-order slot: its children,
        checked one by one as they go, take those."""
        return self._decide(lambda now: self._parent(order, ctx, capabilities, now))

    def check_modify(
        self,
        original: SubmitOrder,
        modify: ModifyOrder,
        ctx: RiskContext,
        *,
        leaves_quantity: Decimal | None = None,
        capabilities: VenueCapabilities | None = None,
    ) -> RiskDecision:
        """Decide on an amendment by checking the order it would leave at the venue.

        ``original`` carries the current terms, and ``ctx`` must still count
        its ``leaves_quantity`` (default: all of it) among the open orders;
        that amount is taken out again so the order is not counted twice. A
        new quantity is the total, filled part included, as venues read it.
        Duplicate and open-order limits do not apply: nothing new rests.
        ``capabilities`` as for ``check_submit`` (a modify can make the
        quantity fractional).
        """
        return self._decide(
            lambda now: self._modify(
                original, modify, ctx, leaves_quantity, now, capabilities_in=capabilities
            )
        )

    def check_cancel(
        self, cancel: CancelOrder | CancelAllOrders | None = None, ctx: RiskContext | None = None
    ) -> RiskDecision:
        """Always approves, whatever the state: a cancel can only take risk away."""
        return RiskDecision(True, None, "cancels are always allowed")

    # The decision frame ------------------------------------------------------

    def _begin(self) -> None:
        """A decision starts with no state change (a loss check may make one)."""
        self._change = None

    def _decide(self, check: Callable[[int], str]) -> RiskDecision:
        self._begin()
        outer = _getcontext()
        _setcontext(self._decimal)
        try:
            try:
                reason = check(self._clock())
            finally:
                _setcontext(outer)
        except Exception as exc:  # noqa: BLE001 - see ``_refusal``
            return self._refusal(exc)
        self._approvals += 1
        return RiskDecision(True, None, reason, self._change)

    def _refusal(self, exc: Exception) -> RiskDecision:
        """The denial a check's exception means, counted.

        A failed check's ``_Denied`` says its code and reason. Anything
        unforeseen (a broken clock, a hand-built message that skipped
        validation, a number too large to compare) must deny the order rather
        than crash the guard and leave the OMS waiting."""
        if isinstance(exc, _Denied):
            decision = RiskDecision(False, exc.code, exc.reason, self._change)
        else:
            decision = RiskDecision(
                False,
                DenialCode.INVALID_ORDER,
                f"order could not be checked: {type(exc).__name__}: {exc}",
                self._change,
            )
        assert decision.code is not None
        self._denials[decision.code] += 1
        return decision

    def _clock(self) -> int:
        now = self._now_ns()
        if isinstance(now, bool) or not isinstance(now, int) or now < 0:
            raise ValueError(f"now_ns() returned {now!r}, not non-negative integer nanoseconds")
        return now

    def _submit(
        self, order_in: object, ctx_in: object, capabilities_in: object, now: int
    ) -> _Candidate:
        """Every check of a new order, in order; the candidate it was judged as.

        A check whose limit is not configured could not deny, so it is not
        called (``_Limited`` says which are, worked out once): the same
        checks in the same order, without a call that returns at once for
        every limit left unset. The exact types are tested before
        ``_require`` is called: it accepts the same values (a subclass too)."""
        order = (
            order_in if type(order_in) is SubmitOrder else _require(order_in, SubmitOrder, "order")
        )
        ctx = ctx_in if type(ctx_in) is RiskContext else _require(ctx_in, RiskContext, "context")
        capabilities = (
            capabilities_in
            if type(capabilities_in) is VenueCapabilities
            else _capabilities(capabilities_in)
        )
        key = (order.venue, order.symbol)
        candidate = _Candidate(
            order,
            key,
            ctx.position(key),
            ctx.orders(key),
            order.quantity,
        )
        limited = self._limited
        self._check_order(candidate, ctx, capabilities)
        if limited.books:
            self._check_books(candidate, ctx)
        if limited.open_orders:
            self._check_open_orders(ctx)
        recent = self._recent
        # The key is only built where a duplicate window is configured to use it.
        duplicate_key = None
        if recent is not None:
            duplicate_key = _duplicate_key(order)
            self._check_duplicate(duplicate_key, now)
        if limited.loss:
            self._check_loss(candidate, ctx, now)
        if self._throttle is not None:
            self._check_rate(now)
        if recent is not None:
            recent.record(duplicate_key, now)
        return candidate

    def _parent(self, order_in: object, ctx_in: object, capabilities_in: object, now: int) -> str:
        order = _require(order_in, SubmitOrder, "order")
        ctx = _require(ctx_in, RiskContext, "context")
        capabilities = _capabilities(capabilities_in)
        key = (order.venue, order.symbol)
        candidate = _Candidate(order, key, ctx.position(key), ctx.orders(key), order.quantity)
        self._check_order(candidate, ctx, capabilities)
        self._check_books(candidate, ctx)
        self._check_loss(candidate, ctx, now)
        return f"parent total {candidate.describe()} approved"

    def _modify(
        self,
        original_in: object,
        modify_in: object,
        ctx_in: object,
        leaves_in: object,
        now: int,
        *,
        capabilities_in: object,
    ) -> str:
        original = _require(original_in, SubmitOrder, "original order")
        modify = _require(modify_in, ModifyOrder, "modification")
        ctx = _require(ctx_in, RiskContext, "context")
        capabilities = _capabilities(capabilities_in)
        ids = (original.client_order_id, original.venue, original.symbol)
        if (modify.client_order_id, modify.venue, modify.symbol) != ids:
            raise _Denied(
                DenialCode.INVALID_ORDER,
                f"modification of {modify.client_order_id} at {modify.venue} for {modify.symbol} "
                f"does not match order {ids[0]} at {ids[1]} for {ids[2]}",
            )
        leaves = original.quantity if leaves_in is None else leaves_in
        if not isinstance(leaves, Decimal) or not _ZERO <= leaves <= original.quantity:
            raise _Denied(
                DenialCode.INVALID_ORDER,
                f"leaves_quantity {leaves!r} is not a Decimal within [0, {original.quantity}]",
            )
        changes: dict[str, Any] = {}
        for name in ("quantity", "price", "stop_price"):
            value = getattr(modify, name)
            if value is not None:
                changes[name] = value
        try:
            amended = replace(original, **changes)
        except ValueError as exc:
            raise _Denied(
                DenialCode.INVALID_ORDER, f"the modified order is invalid: {exc}"
            ) from exc
        filled = original.quantity - leaves
        new_leaves = amended.quantity - filled
        if new_leaves <= 0:
            raise _Denied(
                DenialCode.INVALID_ORDER,
                f"new quantity {amended.quantity} does not exceed the {filled} already filled",
            )
        key = (original.venue, original.symbol)
        others = ctx.orders(key).plus(original.side, -leaves, count=-1)
        candidate = _Candidate(amended, key, ctx.position(key), others, new_leaves)
        self._check_order(candidate, ctx, capabilities)
        self._check_books(candidate, ctx)
        self._check_loss(candidate, ctx, now)
        self._check_rate(now)
        return f"modification of {original.client_order_id} to {candidate.describe()} approved"

    # The checks, in the order they run ---------------------------------------

    def _check_order(
        self, candidate: _Candidate, ctx: RiskContext, capabilities: VenueCapabilities | None
    ) -> None:
        """Everything that depends on the order alone, plus its price against the market.

        A check that could not deny is not called: the state check denies only
        outside ACTIVE or for a reduce-only order, the instrument's only where
        instruments are listed, the per-order limits only where one is set."""
        order = candidate.order
        if self._state is not _ACTIVE or order.reduce_only:
            self._check_state(candidate)
        if capabilities is not None:
            self._check_venue(order, capabilities)
        limited = self._limited
        if limited.instruments:
            rules = self._check_instrument(order)
            if rules is not None:
                self._check_tick(order, rules)
                self._check_lot(order, rules)
                self._check_min_notional(candidate, rules, ctx)
        if limited.per_order:
            self._check_order_quantity(order)
            self._check_order_notional(candidate, ctx)
            self._check_collar(candidate, ctx)

    def _check_state(self, candidate: _Candidate) -> None:
        if self._state is _HALTED:
            raise _Denied(
                DenialCode.TRADING_HALTED,
                f"trading is HALTED ({self._state_reason}): no orders are accepted",
            )
        if candidate.reducing:
            return
        if self._state is _REDUCING:
            raise _Denied(
                DenialCode.REDUCE_ONLY,
                f"trading is REDUCING ({self._state_reason}): {_not_reducing(candidate)}",
            )
        if candidate.order.reduce_only:
            raise _Denied(DenialCode.REDUCE_ONLY, f"reduce-only order: {_not_reducing(candidate)}")

    def _check_venue(self, order: SubmitOrder, capabilities: VenueCapabilities) -> None:
        """What the venue's adapter does not declare it can send never leaves the node."""
        what: str | None = None
        if order.order_type not in capabilities.order_types:
            what = (
                f"order type {order.order_type.value} "
                f"(supported: {_names(capabilities.order_types)})"
            )
        elif order.time_in_force not in capabilities.time_in_force:
            what = (
                f"time in force {order.time_in_force.value} "
                f"(supported: {_names(capabilities.time_in_force)})"
            )
        elif order.post_only and not capabilities.post_only:
            what = "post-only orders"
        elif order.display_quantity is not None and not capabilities.native_iceberg:
            what = f"native iceberg orders (display_quantity {order.display_quantity})"
        elif (
            not capabilities.fractional_quantity
            and order.quantity != order.quantity.to_integral_value()
        ):
            what = f"fractional quantity {order.quantity} (whole units only)"
        if what is not None:
            raise _Denied(
                DenialCode.UNSUPPORTED_BY_VENUE, f"venue {order.venue} does not support {what}"
            )

    def _check_instrument(self, order: SubmitOrder) -> InstrumentRules | None:
        instruments = self._limits.instruments
        rules = instruments.get(order.symbol)
        if rules is None and instruments:
            raise _Denied(
                DenialCode.UNKNOWN_INSTRUMENT,
                f"symbol {order.symbol} has no instrument rules "
                f"(known: {', '.join(sorted(instruments))})",
            )
        return rules

    def _check_tick(self, order: SubmitOrder, rules: InstrumentRules) -> None:
        for name, price in (("price", order.price), ("stop_price", order.stop_price)):
            if price is not None and price % rules.tick_size != 0:
                raise _Denied(
                    DenialCode.TICK_SIZE,
                    f"{name} {price} is not a multiple of tick_size {rules.tick_size} "
                    f"for {order.symbol}",
                )

    def _check_lot(self, order: SubmitOrder, rules: InstrumentRules) -> None:
        quantity = order.quantity
        if quantity % rules.lot_size != 0:
            why = f"is not a multiple of lot_size {rules.lot_size}"
        elif quantity < rules.min_quantity:
            why = f"is below min_quantity {rules.min_quantity}"
        elif rules.max_quantity is not None and quantity > rules.max_quantity:
            why = f"exceeds the instrument's max_quantity {rules.max_quantity}"
        else:
            return
        raise _Denied(DenialCode.LOT_SIZE, f"quantity {quantity} {why} for {order.symbol}")

    def _check_min_notional(
        self, candidate: _Candidate, rules: InstrumentRules, ctx: RiskContext
    ) -> None:
        if rules.min_notional <= 0:
            return
        order = candidate.order
        price = self._order_price(candidate, ctx, "min_notional", rules.min_notional)
        notional = order.quantity * price
        if notional < rules.min_notional:
            raise _Denied(
                DenialCode.MIN_NOTIONAL,
                f"notional {notional} (quantity {order.quantity} x price {price}) "
                f"is below min_notional {rules.min_notional} for {order.symbol}",
            )

    def _check_order_quantity(self, order: SubmitOrder) -> None:
        limit = self._limits.max_order_quantity
        if limit is not None and order.quantity > limit:
            raise _Denied(
                DenialCode.MAX_ORDER_QUANTITY,
                f"quantity {order.quantity} exceeds max_order_quantity {limit}",
            )

    def _check_order_notional(self, candidate: _Candidate, ctx: RiskContext) -> None:
        limit = self._limits.max_order_notional
        if limit is None:
            return
        quantity = candidate.order.quantity
        price = self._order_price(candidate, ctx, "max_order_notional", limit)
        notional = quantity * price
        if notional > limit:
            raise _Denied(
                DenialCode.MAX_ORDER_NOTIONAL,
                f"notional {notional} (quantity {quantity} x price {price}) "
                f"exceeds max_order_notional {limit}",
            )

    def _check_collar(self, candidate: _Candidate, ctx: RiskContext) -> None:
        collar = self._limits.price_collar_bps
        price = candidate.order.price
        if collar is None or price is None:
            return
        last = ctx.last_price(candidate.key)
        if last is None:
            raise _Denied(
                DenialCode.NO_MARKET_PRICE,
                f"no last price for {candidate.key[1]} at {candidate.key[0]} "
                f"to check price {price} against price_collar_bps {collar}",
            )
        if abs(price - last) * _BPS > collar * last:
            distance = abs(price - last) * _BPS / last
            raise _Denied(
                DenialCode.PRICE_COLLAR,
                f"price {price} is {distance:.2f} bps from last price {last}, "
                f"beyond price_collar_bps {collar}",
            )

    def _check_books(self, candidate: _Candidate, ctx: RiskContext) -> None:
        """Position and exposure limits, which reducing orders are exempt from.

        An instrument listed on several venues (``RiskLimits.listings``) is
        judged as the sum of its venues (``_check_listing``)."""
        if not self._limited.books:
            return  # no position or exposure limit: nothing here could deny
        keys = instrument_keys(self._limits.listings, *candidate.key)
        if len(keys) > 1:
            self._check_listing(candidate, ctx, keys)
            return
        if candidate.reducing:
            return
        limits = self._limits
        projected = candidate.projected
        if limits.max_position_quantity is not None and abs(projected) > (
            limits.max_position_quantity
        ):
            raise _Denied(
                DenialCode.MAX_POSITION,
                f"{candidate.describe()} could take the position to {projected} "
                f"(position {candidate.position}, "
                f"pending {candidate.order.side.value} {candidate.pending}), "
                f"beyond max_position_quantity {limits.max_position_quantity}",
            )
        if limits.max_position_pct is not None:
            value = abs(projected) * self._mark(candidate, ctx, "position")
            self._check_position_pct(candidate, ctx, value, candidate.key[1])
        symbol_limit, total_limit = limits.max_symbol_exposure, limits.max_total_exposure
        if symbol_limit is None and total_limit is None:
            return
        mark = self._mark(candidate, ctx, "exposure")
        exposure = abs(projected) * mark
        if symbol_limit is not None and exposure > symbol_limit:
            raise _Denied(
                DenialCode.MAX_EXPOSURE,
                f"{candidate.describe()} could take the exposure in {candidate.key[1]} "
                f"at {candidate.key[0]} to {exposure} ({abs(projected)} x {mark}), "
                f"beyond max_symbol_exposure {symbol_limit}",
            )
        if total_limit is not None:
            total = self._total_exposure(candidate, ctx, mark)
            if total > total_limit:
                raise _Denied(
                    DenialCode.MAX_EXPOSURE,
                    f"{candidate.describe()} could take the total exposure to {total}, "
                    f"beyond max_total_exposure {total_limit}",
                )

    def _check_listing(
        self, candidate: _Candidate, ctx: RiskContext, keys: tuple[VenueSymbol, ...]
    ) -> None:
        """The position and per-symbol limits on an instrument's sum across its venues.

        An order is exempt when it reduces the instrument's summed position (with
        every order on its side across the venues) without taking it through
        zero; one that reduces its own venue's position but adds to the sum is
        not. ``max_total_exposure`` stays a sum over every ``(venue, symbol)``.
        """
        order, limits = candidate.order, self._limits
        side, sign = order.side, order.side.sign
        assert limits.listings is not None
        name = limits.listings.instrument_of(*candidate.key)
        position = sum((ctx.position(key) for key in keys), _ZERO)
        pending = candidate.pending + sum(
            (ctx.orders(key).pending(side) for key in keys[1:]), _ZERO
        )
        if position * sign < 0 and pending + candidate.leaves <= abs(position):
            return
        projected = position + sign * (pending + candidate.leaves)
        held = ", ".join(f"{venue} {ctx.position((venue, symbol))}" for venue, symbol in keys)
        if limits.max_position_quantity is not None and abs(projected) > (
            limits.max_position_quantity
        ):
            raise _Denied(
                DenialCode.MAX_POSITION,
                f"{candidate.describe()} could take the position in {name} across its venues "
                f"to {projected} (positions {held}; pending {side.value} {pending}), "
                f"beyond max_position_quantity {limits.max_position_quantity}",
            )
        symbol_limit, pct, total_limit = (
            limits.max_symbol_exposure,
            limits.max_position_pct,
            limits.max_total_exposure,
        )
        if symbol_limit is None and pct is None and total_limit is None:
            return
        mark = self._mark(candidate, ctx, "exposure")
        value = abs(self._instrument_value(candidate, ctx, keys, mark))
        if symbol_limit is not None and value > symbol_limit:
            raise _Denied(
                DenialCode.MAX_EXPOSURE,
                f"{candidate.describe()} could take the exposure in {name} across its venues "
                f"to {value} (positions {held}), beyond max_symbol_exposure {symbol_limit}",
            )
        if pct is not None:
            self._check_position_pct(candidate, ctx, value, name or candidate.key[1])
        if total_limit is not None:
            total = self._total_exposure(candidate, ctx, mark)
            if total > total_limit:
                raise _Denied(
                    DenialCode.MAX_EXPOSURE,
                    f"{candidate.describe()} could take the total exposure to {total}, "
                    f"beyond max_total_exposure {total_limit}",
                )

    def _instrument_value(
        self,
        candidate: _Candidate,
        ctx: RiskContext,
        keys: tuple[VenueSymbol, ...],
        mark: Decimal,
    ) -> Decimal:
        """The instrument's signed value if every order on the candidate's side fills:
        each venue's position plus its pending orders, at that venue's own mark."""
        side, sign = candidate.order.side, candidate.order.side.sign
        own = candidate.projected
        value = own * mark
        for key in keys[1:]:
            amount = ctx.position(key) + sign * ctx.orders(key).pending(side)
            if amount == 0:
                continue
            price = ctx.last_price(key)
            if price is None:
                raise _Denied(
                    DenialCode.NO_MARKET_PRICE,
                    f"no last price for {key[1]} at {key[0]} to value its part of "
                    f"{candidate.order.symbol} at {candidate.order.venue}'s instrument",
                )
            value += amount * price
        return value

    def _check_position_pct(
        self, candidate: _Candidate, ctx: RiskContext, value: Decimal, name: str
    ) -> None:
        """|value| of one instrument against ``max_position_pct`` of the equity
        (``capital`` plus the node's PnL)."""
        pct, capital = self._limits.max_position_pct, self._limits.capital
        assert pct is not None and capital is not None
        if ctx.equity is None:
            raise _Denied(
                DenialCode.MAX_POSITION,
                f"equity is unknown, so max_position_pct {pct} cannot be checked",
            )
        equity = capital + ctx.equity
        if equity <= 0:
            raise _Denied(
                DenialCode.MAX_POSITION,
                f"equity {equity} (capital {capital} + PnL {ctx.equity}) is not positive: "
                f"max_position_pct {pct} admits no order that adds to a position",
            )
        if value > pct * equity:
            raise _Denied(
                DenialCode.MAX_POSITION,
                f"{candidate.describe()} could take {name} to a value of {value}, "
                f"{value / equity} of equity {equity} (capital {capital} + PnL {ctx.equity}), "
                f"beyond max_position_pct {pct}",
            )

    def _check_open_orders(self, ctx: RiskContext) -> None:
        limit = self._limits.max_open_orders
        count = ctx.total_open_orders()
        if limit is not None and count >= limit:
            raise _Denied(
                DenialCode.MAX_OPEN_ORDERS,
                f"{count} orders are already open and max_open_orders is {limit}",
            )

    def _check_duplicate(self, key: Hashable, now: int) -> None:
        if self._recent is None:
            return
        age = self._recent.age(key, now)
        if age is not None:
            raise _Denied(
                DenialCode.DUPLICATE_ORDER,
                f"an identical order was approved {age} ns ago, "
                f"within duplicate_window_ns {self._limits.duplicate_window_ns}",
            )

    def _check_loss(self, candidate: _Candidate, ctx: RiskContext, now: int) -> None:
        breach = self._loss_breach(ctx)
        if breach is None:
            return
        code, reason, breached = breach
        if breached:
            self._change = self._escalate(reason, now) or self._change
        if self._state is _HALTED:
            raise _Denied(code, f"{reason}; trading is HALTED")
        if not candidate.reducing:
            raise _Denied(code, f"{reason}; only orders that reduce the position are accepted")

    def _check_rate(self, now: int) -> None:
        throttle = self._throttle
        if throttle is not None and not throttle.ready(now):
            raise _Denied(
                DenialCode.RATE_LIMIT,
                f"more than max_orders_per_second {self._limits.max_orders_per_second} "
                f"(burst {self._limits.burst}); the next order is possible in "
                f"{throttle.wait_ns()} ns",
            )
        if throttle is not None:
            throttle.take()

    # Helpers ------------------------------------------------------------------

    def _order_price(
        self, candidate: _Candidate, ctx: RiskContext, limit_name: str, limit: Decimal
    ) -> Decimal:
        """The price an order trades at, as best we know: its own, else the last trade."""
        order = candidate.order
        price = order.price if order.price is not None else order.stop_price
        if price is None:
            price = ctx.last_price(candidate.key)
        if price is None:
            raise _Denied(
                DenialCode.NO_MARKET_PRICE,
                f"{order.order_type.value} order for {order.symbol} at {order.venue} has no "
                f"price and there is no last price to value it against {limit_name} {limit}",
            )
        return price

    def _mark(self, candidate: _Candidate, ctx: RiskContext, what: str) -> Decimal:
        """The price positions are valued at: the last trade, else the order's own price."""
        order = candidate.order
        mark = ctx.last_price(candidate.key)
        if mark is None:
            mark = order.price if order.price is not None else order.stop_price
        if mark is None:
            raise _Denied(
                DenialCode.NO_MARKET_PRICE,
                f"no last price for {order.symbol} at {order.venue} to value its {what}",
            )
        return mark

    def _total_exposure(self, candidate: _Candidate, ctx: RiskContext, mark: Decimal) -> Decimal:
        """Every position's worst case (all open orders on its worse side fill) at its mark."""
        total = _ZERO
        keys = set(ctx.positions) | set(ctx.open_orders)
        keys.discard(candidate.key)
        for key in sorted(keys):
            position, orders = ctx.position(key), ctx.orders(key)
            worst = max(abs(position + orders.buy_quantity), abs(position - orders.sell_quantity))
            if worst == 0:
                continue
            price = ctx.last_price(key)
            if price is None:
                raise _Denied(
                    DenialCode.NO_MARKET_PRICE,
                    f"no last price for {key[1]} at {key[0]} to value its exposure "
                    f"against max_total_exposure {self._limits.max_total_exposure}",
                )
            total += worst * price
        other_side = candidate.order.side.opposite
        other = candidate.position + other_side.sign * candidate.others.pending(other_side)
        return total + max(abs(candidate.projected), abs(other)) * mark

    def _loss_breach(self, ctx: RiskContext) -> tuple[DenialCode, str, bool] | None:
        """The first loss limit that refuses new exposure: (code, reason, really breached).

        An unknown equity with ``max_drawdown`` set refuses new exposure
        without being a breach, so it never switches the trading state.
        """
        limits = self._limits
        if limits.daily_loss_limit is not None and ctx.daily_pnl <= -limits.daily_loss_limit:
            reason = (
                f"daily PnL {ctx.daily_pnl} is at or below -daily_loss_limit "
                f"{limits.daily_loss_limit}"
            )
            return DenialCode.DAILY_LOSS_LIMIT, reason, True
        if limits.max_drawdown is None:
            return None
        equity, peak = ctx.equity, ctx.peak_equity
        if equity is None or peak is None:
            return (
                DenialCode.MAX_DRAWDOWN,
                f"equity is unknown, so max_drawdown {limits.max_drawdown} cannot be checked",
                False,
            )
        peak = max(peak, equity)
        drawdown = peak - equity
        if drawdown >= limits.max_drawdown:
            reason = (
                f"drawdown {drawdown} from peak equity {peak} (equity {equity}) "
                f"reaches max_drawdown {limits.max_drawdown}"
            )
            return DenialCode.MAX_DRAWDOWN, reason, True
        return None

    def _escalate(self, reason: str, now: int) -> TradingStateChanged | None:
        target = self._limits.on_loss_breach
        if _SEVERITY[target] <= _SEVERITY[self._state]:
            return None
        return self._enter(target, reason, now)

    def _enter(self, state: TradingState, reason: str, now: int) -> TradingStateChanged:
        event = TradingStateChanged(state=state, reason=reason, ts_ns=now)
        self._state = state
        self._state_reason = reason
        return event
