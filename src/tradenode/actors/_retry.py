"""When a failed broker request may be sent again, and after how long.

Retrying a query is harmless; retrying an order is how a node ends up
long twice the size it meant. A submit that timed out may well be resting
at the venue, so the only safe re-send is one under the same client order
id after a status query proved the venue does not have it. That rule lives
here as a pure function so it can be tested exhaustively and so no actor
has to re-derive it under pressure.
"""

from __future__ import annotations

import enum
import math
import random

from ._breaker_state import FailureKind

__all__ = ["Operation", "RetryDecision", "RetryPolicy", "retry_decision"]


class Operation(enum.Enum):
    QUERY = "query"
    """Read-only: order status, open orders, balances."""
    CANCEL = "cancel"
    """Safe to repeat: a cancel for an order the venue no longer has is refused, not harmful."""
    SUBMIT = "submit"
    """Creates an order: a duplicate is a real position."""
    MODIFY = "modify"
    """Cancel/replace: the replacement is a new order with the same hazard as a submit."""


class RetryDecision(enum.Enum):
    RETRY = "retry"
    """Send again after ``RetryPolicy.delay``; for SUBMIT and MODIFY, under the same client order id."""
    QUERY_FIRST = "query_first"
    """The outcome is unknown: ask the venue for the order by client order id before anything else."""
    DO_NOT_RESEND = "do_not_resend"
    """The venue has the order: adopt the venue's order and its state, never send another."""
    GIVE_UP = "give_up"
    """Report the failure: not retryable, or the attempt budget is spent."""


_RETRYABLE = frozenset({FailureKind.TRANSPORT, FailureKind.TIMEOUT, FailureKind.RATE_LIMITED})
"""BANNED is absent: sending anything while banned lengthens the ban."""

_CREATES_ORDERS = frozenset({Operation.SUBMIT, Operation.MODIFY})


def retry_decision(
    operation: Operation,
    attempt: int,
    last_error_kind: FailureKind,
    *,
    venue_has_order: bool | None,
    max_attempts: int | None = None,
) -> RetryDecision:
    """The safety rule; ``attempt`` counts the attempts already made (1 after the first).

    For SUBMIT and MODIFY, what the venue has outranks everything: an order
    the venue holds is adopted whatever the error said, and an unknown
    outcome is resolved by a query before the attempt budget or the error
    kind is even considered, because giving up on an order that may be live
    leaves an orphan nobody tracks. A business rejection is the venue's
    definite "no" and is never retried. ``venue_has_order`` is ignored for
    QUERY and CANCEL, which are safe to repeat. ``max_attempts=None``
    applies the safety rule alone, with no budget.
    """
    if attempt < 1:
        raise ValueError(f"retry_decision: attempt={attempt} must be >= 1")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"retry_decision: max_attempts={max_attempts} must be >= 1")
    if operation in _CREATES_ORDERS:
        if venue_has_order is True:
            return RetryDecision.DO_NOT_RESEND
        if last_error_kind is FailureKind.BUSINESS:
            return RetryDecision.GIVE_UP
        if venue_has_order is None:
            return RetryDecision.QUERY_FIRST
    if last_error_kind not in _RETRYABLE:
        return RetryDecision.GIVE_UP
    if max_attempts is not None and attempt >= max_attempts:
        return RetryDecision.GIVE_UP
    return RetryDecision.RETRY


class RetryPolicy:
    """Attempt budget and backoff for broker requests.

    ``delay`` follows the supervision ``Backoff`` formula, so the config's
    ``broker_backoff`` means the same thing everywhere: ``base_delay * 2 **
    (attempt - 1)`` capped at ``max_delay``, times ``1 + random_factor * u``
    with ``u`` uniform in [0, 1). The jitter sits on top of the cap so
    clients that all hit ``max_delay`` still spread out. The ``rng`` is
    injected so tests and replays see the same delays.
    """

    def __init__(
        self,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        random_factor: float,
        rng: random.Random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts={max_attempts}: must be >= 1")
        if not (math.isfinite(max_delay) and 0 < base_delay <= max_delay):
            raise ValueError(
                f"RetryPolicy: need 0 < base_delay <= max_delay < inf, got {base_delay}, {max_delay}"
            )
        if not (math.isfinite(random_factor) and random_factor >= 0):
            raise ValueError(f"RetryPolicy.random_factor={random_factor}: must be finite and >= 0")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.random_factor = random_factor
        self._rng = rng

    def delay(self, attempt: int) -> float:
        """Seconds to wait after ``attempt`` attempts have failed; draws from the rng."""
        if attempt < 1:
            raise ValueError(f"RetryPolicy.delay: attempt={attempt} must be >= 1")
        base = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 62))
        return base * (1.0 + self._rng.random() * self.random_factor)

    def decide(
        self,
        operation: Operation,
        attempt: int,
        last_error_kind: FailureKind,
        *,
        venue_has_order: bool | None,
    ) -> RetryDecision:
        return retry_decision(
            operation,
            attempt,
            last_error_kind,
            venue_has_order=venue_has_order,
            max_attempts=self.max_attempts,
        )
