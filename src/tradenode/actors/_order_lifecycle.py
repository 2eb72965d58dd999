"""Which order status may follow which, written out as one table.

Venues report out of order: a fill overtakes its accept, a fill lands while
our cancel is in flight, a cancel is refused because the order just filled.
The table admits exactly those real sequences, so anything outside it is a
bug or a confused venue and gets logged and ignored, never applied. Moves to
the same status are not transitions: a repeated report is a duplicate, and
another partial fill changes quantity, not status.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tradenode.messages._enums import OrderStatus

__all__ = [
    "LIVE_AT_VENUE",
    "OPEN",
    "ORDER_TRANSITIONS",
    "PENDING",
    "PENDING_STATUSES",
    "TERMINAL",
    "is_legal_transition",
]

_S = OrderStatus

#: A cancel or replace is in flight; the order is still live at the venue
#: underneath, in the status the OMS remembers as the order's resume status.
PENDING = frozenset({_S.PENDING_CANCEL, _S.PENDING_REPLACE})

#: Resting at the venue with nothing of ours in flight: two of these in one
#: logical order means a replace left the old order alive.
LIVE_AT_VENUE = frozenset({_S.ACCEPTED, _S.PARTIALLY_FILLED})

_VENUE_ENDS = frozenset({_S.FILLED, _S.CANCELED, _S.EXPIRED})

# ``status in`` these, on the OMS's path of every report, instead of a set or
# ``OrderStatus.is_open``/``is_terminal``: ``in`` a tuple compares by identity,
# where a set (and those properties use one) hashes the member through the
# enum's Python-level ``__hash__``. Derived from the enum's own properties.

#: ``status.is_open``: at the venue or on its way there.
OPEN: tuple[OrderStatus, ...] = tuple(status for status in _S if status.is_open)

#: ``status.is_terminal``: nothing more will happen to the order.
TERMINAL: tuple[OrderStatus, ...] = tuple(status for status in _S if status.is_terminal)

#: ``status in PENDING``, as a tuple (see above).
PENDING_STATUSES: tuple[OrderStatus, ...] = tuple(PENDING)

ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        # Before the venue sees it: sent, or refused by our own risk checks.
        _S.INITIALIZED: frozenset({_S.DENIED, _S.SUBMITTED}),
        # Sent, not acknowledged. Fills may overtake the accept; an IOC order
        # may come back canceled or expired without any accept; a cancel or
        # cancel/replace may be sent before the accept arrives.
        _S.SUBMITTED: frozenset(
            {_S.ACCEPTED, _S.REJECTED, _S.PARTIALLY_FILLED, *PENDING, *_VENUE_ENDS}
        ),
        # Resting. The venue may cancel or expire it on its own.
        _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, *PENDING, *_VENUE_ENDS}),
        _S.PARTIALLY_FILLED: frozenset({*PENDING, *_VENUE_ENDS}),
        # A cancel in flight: it succeeds, the order fills or expires first,
        # or the cancel is refused and the order resumes its open status.
        # REJECTED when the cancel overtook a submission the venue refuses.
        _S.PENDING_CANCEL: frozenset(
            {_S.SUBMITTED, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.REJECTED, *_VENUE_ENDS}
        ),
        # A replace in flight: amended or replaced (the old id ends CANCELED),
        # refused (resume), overtaken by fills, or a cancel sent on top of it.
        _S.PENDING_REPLACE: frozenset(
            {
                _S.SUBMITTED,
                _S.ACCEPTED,
                _S.PARTIALLY_FILLED,
                _S.PENDING_CANCEL,
                _S.REJECTED,
                *_VENUE_ENDS,
            }
        ),
        # Terminal. A fill that crossed a cancel still counts (a fill is a
        # fact) but does not reopen the order.
        _S.DENIED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.FILLED: frozenset(),
        _S.CANCELED: frozenset(),
        _S.EXPIRED: frozenset(),
    }
)


def is_legal_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in ORDER_TRANSITIONS[current]
