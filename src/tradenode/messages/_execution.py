"""Parent orders: one target quantity worked by an execution algorithm as many child orders.

A parent is submitted with an algorithm spec (a frozen ``AlgoParams``
subclass per algorithm: ``TwapParams``, ...). The spec's construction
checks only types, as every message does; whether its values make sense
for the parent (a duration > 0, at least one slice, a display quantity
below the total) is ``AlgoParams.problems(quantity)``, which the risk guard
asks, so a bad spec is *denied* with a code and a reason (``ParentDenied``)
like any order, never raised into the node.

Child orders are ordinary ``SubmitOrder``\\ s carrying ``parent_id``; their
client order ids are ``child_order_id(parent_id, n)``, deterministic, so
that after a crash the next incarnation of the algorithm knows from the
OMS (journal plus venue reconciliation) exactly which children exist.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from ._enums import DenialCode, Side
from ._messages import Message
from ._validation import (
    check_client_order_id,
    check_decimal,
    check_enum,
    check_finite_decimal,
    check_identifier,
    check_non_negative_decimal,
    check_optional_identifier,
    check_optional_positive_decimal,
    check_positive_decimal,
    check_timestamp,
)

__all__ = [
    "EXECUTION_MESSAGES",
    "MAX_PARENT_ID_LENGTH",
    "PARENT_TRANSITIONS",
    "AlgoParams",
    "CancelParentOrder",
    "ParentAccepted",
    "ParentCanceled",
    "ParentDenied",
    "ParentFilled",
    "ParentProgress",
    "ParentState",
    "SubmitParentOrder",
    "TwapParams",
    "child_number",
    "child_order_id",
]

#: Room for ``-<n>_<j>`` (``-99999_9``: 8 characters) behind the parent id within the
#: 36 of a client id.
MAX_PARENT_ID_LENGTH: Final = 28


class ParentState(enum.Enum):
    """A parent's lifecycle; legal moves are ``PARENT_TRANSITIONS``."""

    WORKING = "WORKING"
    PENDING_CANCEL = "PENDING_CANCEL"
    """Cancel requested: its open children are being cancelled."""
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    """The algorithm finished its schedule with the target not reached."""

    @property
    def is_terminal(self) -> bool:
        return self in (ParentState.FILLED, ParentState.CANCELED, ParentState.EXPIRED)


PARENT_TRANSITIONS: Final[dict[ParentState, frozenset[ParentState]]] = {
    ParentState.WORKING: frozenset(
        {ParentState.PENDING_CANCEL, ParentState.FILLED, ParentState.EXPIRED, ParentState.CANCELED}
    ),
    ParentState.PENDING_CANCEL: frozenset(
        {ParentState.CANCELED, ParentState.EXPIRED, ParentState.FILLED}
    ),
    ParentState.FILLED: frozenset(),
    ParentState.CANCELED: frozenset(),
    ParentState.EXPIRED: frozenset(),
}


def child_order_id(parent_id: str, number: int, extra: int = 0) -> str:
    """The client order id of a parent's child ``number`` (``extra`` > 0: a further
    child sent for the same slice), the same in every incarnation.

    ``<parent>-<n>`` or ``<parent>-<n>_<j>``: only characters every venue's client id
    rules take (Binance and Coinbase refuse ``.``), and read back unambiguously
    from the right, so no child of one parent is ever a child id of another."""
    if extra:
        return f"{parent_id}-{number}_{extra}"
    return f"{parent_id}-{number}"


def child_number(parent_id: str, client_order_id: str) -> tuple[int, int] | None:
    """``(number, extra)`` of a child id made by :func:`child_order_id`; None otherwise."""
    prefix = f"{parent_id}-"
    if not client_order_id.startswith(prefix):
        return None
    number, _, extra = client_order_id[len(prefix) :].partition("_")
    if not number.isdigit() or (extra and not extra.isdigit()):
        return None
    return int(number), int(extra or 0)


class AlgoParams(Message):
    """Base of every algorithm's parameters (a frozen, slotted, keyword-only dataclass).

    ``problems`` returns why the parameters cannot work a parent of
    ``quantity`` (one sentence naming the field), or None.
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """The algorithm's name, for logs and views."""
        return type(self).__name__.removesuffix("Params").upper()

    def problems(self, quantity: Decimal) -> str | None:
        return None

    @property
    def worst_price(self) -> Decimal | None:
        """The parent's limit price (None: market); the risk guard checks the total at it."""
        return None

    @property
    def needs_tape(self) -> bool:
        """Whether the algorithm cannot work without its venue's public trades (the
        risk guard denies it ``NO_TAPE`` on a venue that does not print them)."""
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class TwapParams(AlgoParams):
    """Time-weighted: ``slices`` children spread evenly over ``duration`` seconds.

    ``size_jitter`` (in [0, 1)) varies each slice's share of the target by up
    to that fraction either way; ``time_jitter`` (in [0, 0.5)) moves each
    slice time by up to that fraction of the interval; both are drawn from
    a generator seeded by the node seed and the parent id, so a restarted
    node computes the same schedule. With ``catch_up`` a slice sends what
    the schedule says should be done by then, minus what is filled or still
    working (an earlier slice's unfilled remainder is added); without it,
    only its own share. A child never exceeds the target minus what is
    filled and working. ``limit_price`` None sends market children.
    """

    duration: float
    slices: int
    limit_price: Decimal | None = None
    size_jitter: float = 0.0
    time_jitter: float = 0.0
    catch_up: bool = True

    def __post_init__(self) -> None:
        _check_number(self, "duration", self.duration)
        if isinstance(self.slices, bool) or not isinstance(self.slices, int):
            raise ValueError(f"TwapParams.slices={self.slices!r}: must be an int")
        check_decimal(self, "limit_price", self.limit_price, optional=True)
        _check_number(self, "size_jitter", self.size_jitter)
        _check_number(self, "time_jitter", self.time_jitter)
        if not isinstance(self.catch_up, bool):
            raise ValueError(f"TwapParams.catch_up={self.catch_up!r}: must be a bool")
        for name in ("duration", "size_jitter", "time_jitter"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def worst_price(self) -> Decimal | None:
        return self.limit_price

    def problems(self, quantity: Decimal) -> str | None:
        if not self.duration > 0:
            return f"TwapParams.duration={self.duration!r}: must be greater than zero seconds"
        if self.slices < 1:
            return f"TwapParams.slices={self.slices!r}: must be at least 1"
        if self.slices > 10_000:
            return f"TwapParams.slices={self.slices!r}: at most 10000"
        if self.limit_price is not None and self.limit_price <= 0:
            return f"TwapParams.limit_price={self.limit_price!r}: must be greater than zero"
        if not 0 <= self.size_jitter < 1:
            return f"TwapParams.size_jitter={self.size_jitter!r}: must be within [0, 1)"
        if not 0 <= self.time_jitter < 0.5:
            return f"TwapParams.time_jitter={self.time_jitter!r}: must be within [0, 0.5)"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitParentOrder(Message):
    """Work ``quantity`` of ``symbol`` with an algorithm; ``venue`` None asks the router."""

    parent_id: str
    strategy_id: str
    symbol: str
    side: Side
    quantity: Decimal
    algorithm: AlgoParams
    venue: str | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_identifier(self, "symbol", self.symbol)
        check_enum(self, "side", self.side, Side)
        check_finite_decimal(self, "quantity", self.quantity)
        if not isinstance(self.algorithm, AlgoParams):
            raise ValueError(
                f"SubmitParentOrder.algorithm={self.algorithm!r}: must be an AlgoParams"
            )
        check_optional_identifier(self, "venue", self.venue)
        check_timestamp(self, "ts_ns", self.ts_ns)

    def problems(self) -> str | None:
        """Why this parent cannot be worked (a value out of range), or None."""
        if len(self.parent_id) > MAX_PARENT_ID_LENGTH:
            return (
                f"SubmitParentOrder.parent_id={self.parent_id!r}: at most "
                f"{MAX_PARENT_ID_LENGTH} characters (its children's ids add a suffix)"
            )
        if self.quantity <= 0:
            return f"SubmitParentOrder.quantity={self.quantity}: must be greater than zero"
        return self.algorithm.problems(self.quantity)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelParentOrder(Message):
    """Stop the algorithm and cancel the parent's open children.

    ``expire``: the algorithm's own schedule is over short of the target, so
    the parent ends EXPIRED rather than CANCELED."""

    parent_id: str
    reason: str = "cancel requested"
    expire: bool = False
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        _check_text(self, "reason", self.reason)
        if not isinstance(self.expire, bool):
            raise ValueError(f"CancelParentOrder.expire={self.expire!r}: must be a bool")
        check_timestamp(self, "ts_ns", self.ts_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentAccepted(Message):
    """The parent passed its checks and is journaled; its algorithm starts."""

    parent_id: str
    strategy_id: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_timestamp(self, "ts_ns", self.ts_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentDenied(Message):
    """Refused before any child was sent; ``code`` for machines, ``reason`` for people."""

    parent_id: str
    strategy_id: str
    code: DenialCode
    reason: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_enum(self, "code", self.code, DenialCode)
        _check_text(self, "reason", self.reason)
        check_timestamp(self, "ts_ns", self.ts_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentProgress(Message):
    """Where a parent stands after one of its children changed."""

    parent_id: str
    strategy_id: str
    state: ParentState
    target: Decimal
    filled: Decimal
    open_quantity: Decimal
    """Leaves of the children still working at a venue (or on their way)."""
    avg_price: Decimal | None = None
    children: int = 0
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_enum(self, "state", self.state, ParentState)
        check_positive_decimal(self, "target", self.target)
        check_non_negative_decimal(self, "filled", self.filled)
        check_non_negative_decimal(self, "open_quantity", self.open_quantity)
        check_optional_positive_decimal(self, "avg_price", self.avg_price)
        check_timestamp(self, "ts_ns", self.ts_ns)

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.target - self.filled)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentFilled(Message):
    """The target is filled (never more: children are sized to what remains)."""

    parent_id: str
    strategy_id: str
    filled: Decimal
    avg_price: Decimal
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_positive_decimal(self, "filled", self.filled)
        check_positive_decimal(self, "avg_price", self.avg_price)
        check_timestamp(self, "ts_ns", self.ts_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentCanceled(Message):
    """The parent ended short of its target (cancelled, or expired) with every child closed."""

    parent_id: str
    strategy_id: str
    state: ParentState
    filled: Decimal
    reason: str
    avg_price: Decimal | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_enum(self, "state", self.state, ParentState)
        check_non_negative_decimal(self, "filled", self.filled)
        _check_text(self, "reason", self.reason)
        check_optional_positive_decimal(self, "avg_price", self.avg_price)
        check_timestamp(self, "ts_ns", self.ts_ns)


#: What the message codec registers from this module, with their wire tags (never
#: change a tag; add new algorithms' params here).
EXECUTION_MESSAGES: Final[tuple[tuple[type[Message], str], ...]] = (
    (TwapParams, "twap_params"),
    (SubmitParentOrder, "submit_parent_order"),
    (CancelParentOrder, "cancel_parent_order"),
    (ParentAccepted, "parent_accepted"),
    (ParentDenied, "parent_denied"),
    (ParentProgress, "parent_progress"),
    (ParentFilled, "parent_filled"),
    (ParentCanceled, "parent_canceled"),
)


def _check_number(owner: object, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{type(owner).__name__}.{field}={value!r}: must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{type(owner).__name__}.{field}={value!r}: must be finite")


def _check_text(owner: object, field: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{type(owner).__name__}.{field}={value!r}: must be a string")
