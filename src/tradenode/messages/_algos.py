"""The parameters of the VWAP, Iceberg and POV algorithms, and their value checks.

As every ``AlgoParams``, construction checks only types (a float where a
price belongs is a programming error); whether the values can work a parent
(a duration > 0, a non-empty profile, a display quantity below the total,
a participation in (0, 1]) is :meth:`problems`, which the risk guard asks
before any child is sent, so a bad spec is denied with a reason that starts
with a machine-readable code (``DISPLAY_ABOVE_TOTAL: ...``), never raised.
The checks are plain functions (``check_vwap``, ``check_iceberg``,
``check_pov``) answering a :class:`ParamProblem` or None; the policies in
``tradenode.execution`` rely on them having passed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from ._execution import AlgoParams
from ._messages import Message
from ._validation import check_client_order_id, check_decimal, check_timestamp

__all__ = [
    "ALGO_MESSAGES",
    "IcebergParams",
    "ParamProblem",
    "ParentProfile",
    "PovParams",
    "VwapParams",
    "check_iceberg",
    "check_pov",
    "check_vwap",
    "profile_problem",
]


@dataclass(frozen=True, slots=True)
class ParamProblem:
    """Why an algorithm's parameters cannot run: ``code`` for machines, ``reason`` for people."""

    code: str
    reason: str


def _as_number(value: object) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value)) if math.isfinite(value) else None
    return None


def _check_duration(name: str, value: object, *, optional: bool = False) -> ParamProblem | None:
    """A duration in seconds must be a finite number above zero."""
    if value is None and optional:
        return None
    number = _as_number(value)
    if number is None or number <= 0:
        return ParamProblem(
            "INVALID_DURATION", f"{name}={value!r}: must be a number of seconds > 0"
        )
    return None


def _check_positive(name: str, value: object, *, optional: bool = False) -> ParamProblem | None:
    """A quantity or price: a finite Decimal above zero (floats round, so they are refused)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        return ParamProblem("INVALID_PARAMETER", f"{name}={value!r}: must be a finite Decimal")
    if value <= 0:
        return ParamProblem("INVALID_PARAMETER", f"{name}={value}: must be greater than zero")
    return None


def _check_fraction(name: str, value: object, *, optional: bool = False) -> ParamProblem | None:
    """A participation rate: a Decimal in (0, 1]."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        return ParamProblem(
            "PARTICIPATION_OUT_OF_RANGE", f"{name}={value!r}: must be a Decimal in (0, 1]"
        )
    if not Decimal(0) < value <= Decimal(1):
        return ParamProblem("PARTICIPATION_OUT_OF_RANGE", f"{name}={value}: must be within (0, 1]")
    return None


def profile_problem(weights: object) -> ParamProblem | None:
    """Why ``weights`` cannot be a volume profile (empty, negative, all zero, not
    numbers), or None."""
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
        return ParamProblem("INVALID_PROFILE", f"profile={weights!r}: must be a list of weights")
    if not weights:
        return ParamProblem("EMPTY_PROFILE", "profile=[]: needs at least one bucket")
    total = Decimal(0)
    for index, weight in enumerate(weights):
        if isinstance(weight, bool) or not isinstance(weight, Decimal | int):
            return ParamProblem(
                "INVALID_PROFILE",
                f"profile[{index}]={weight!r}: must be a Decimal or an int (floats round)",
            )
        value = Decimal(weight)
        if not value.is_finite():
            return ParamProblem("INVALID_PROFILE", f"profile[{index}]={weight}: not finite")
        if value < 0:
            return ParamProblem(
                "NEGATIVE_PROFILE", f"profile[{index}]={weight}: a volume share cannot be < 0"
            )
        total += value
    if total == 0:
        return ParamProblem("EMPTY_PROFILE", "profile: every weight is zero")
    return None


def check_vwap(
    *,
    quantity: Decimal,
    duration: object,
    profile: object,
    interval: object = None,
    limit_price: object = None,
    min_participation: object = None,
    max_participation: object = None,
    tolerance: object = None,
    lookback: object = None,
    buckets: object = None,
) -> ParamProblem | None:
    """Every VWAP parameter checked (None: they hold).

    The profile is either configured (``profile``: one weight per bucket) or
    observed (``lookback`` seconds of the venue's tape binned into ``buckets``),
    never both."""
    for problem in (
        _check_duration("duration", duration),
        _check_duration("interval", interval, optional=True),
        _check_duration("lookback", lookback, optional=True),
        _check_positive("limit_price", limit_price, optional=True),
        _check_fraction("min_participation", min_participation, optional=True),
        _check_fraction("max_participation", max_participation, optional=True),
        _check_fraction("tolerance", tolerance, optional=True),
    ):
        if problem is not None:
            return problem
    if (
        isinstance(min_participation, Decimal)
        and isinstance(max_participation, Decimal)
        and min_participation > max_participation
    ):
        return ParamProblem(
            "PARTICIPATION_OUT_OF_RANGE",
            f"min_participation={min_participation} is above max_participation={max_participation}",
        )
    interval, duration = _as_number(interval), _as_number(duration)
    if interval is not None and duration is not None and interval > duration:
        return ParamProblem(
            "INVALID_DURATION", f"interval={interval}: longer than duration={duration}"
        )
    if lookback is None:
        if buckets is not None:
            return ParamProblem(
                "INVALID_PROFILE",
                f"buckets={buckets!r}: only with lookback (a configured profile has one "
                "bucket per weight)",
            )
        return profile_problem(profile)
    if profile:
        return ParamProblem(
            "INVALID_PROFILE",
            "profile and lookback: give a profile, or a lookback to observe one, not both",
        )
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= 1_000:
        return ParamProblem(
            "INVALID_PROFILE",
            f"buckets={buckets!r}: an observed profile needs an int number of buckets in [1, 1000]",
        )
    return None


def check_iceberg(
    *,
    quantity: Decimal,
    display_quantity: object,
    limit_price: object,
    price_offset: object = None,
    tick_size: Decimal | None = None,
    lot: Decimal | None = None,
) -> ParamProblem | None:
    """Every Iceberg parameter checked (None: they hold)."""
    for problem in (
        _check_positive("display_quantity", display_quantity),
        _check_positive("limit_price", limit_price),
    ):
        if problem is not None:
            return problem
    assert isinstance(display_quantity, Decimal) and isinstance(limit_price, Decimal)
    if price_offset is not None and (
        isinstance(price_offset, bool)
        or not isinstance(price_offset, Decimal)
        or not price_offset.is_finite()
        or price_offset < 0
    ):
        return ParamProblem(
            "INVALID_PARAMETER", f"price_offset={price_offset!r}: must be a Decimal >= 0"
        )
    if display_quantity > quantity:
        return ParamProblem(
            "DISPLAY_ABOVE_TOTAL",
            f"display_quantity={display_quantity} is above the parent's quantity {quantity}",
        )
    if lot is not None and display_quantity % lot != 0:
        return ParamProblem(
            "INVALID_PARAMETER", f"display_quantity={display_quantity}: not a multiple of {lot}"
        )
    if isinstance(price_offset, Decimal) and price_offset >= limit_price:
        return ParamProblem(
            "INVALID_PARAMETER",
            f"price_offset={price_offset}: must be below limit_price={limit_price}",
        )
    if tick_size is not None and limit_price % tick_size != 0:
        return ParamProblem(
            "INVALID_PARAMETER", f"limit_price={limit_price}: not a multiple of tick {tick_size}"
        )
    return None


def check_pov(
    *,
    quantity: Decimal,
    participation: object,
    min_participation: object = None,
    max_participation: object = None,
    min_child_quantity: object = None,
    limit_price: object = None,
    duration: object = None,
    interval: object = None,
) -> ParamProblem | None:
    """Every POV parameter checked (None: they hold)."""
    for problem in (
        _check_fraction("participation", participation),
        _check_fraction("min_participation", min_participation, optional=True),
        _check_fraction("max_participation", max_participation, optional=True),
        _check_positive("min_child_quantity", min_child_quantity, optional=True),
        _check_positive("limit_price", limit_price, optional=True),
        _check_duration("duration", duration, optional=True),
        _check_duration("interval", interval, optional=True),
    ):
        if problem is not None:
            return problem
    assert isinstance(participation, Decimal)
    low = min_participation if isinstance(min_participation, Decimal) else None
    high = max_participation if isinstance(max_participation, Decimal) else None
    if low is not None and low > participation:
        return ParamProblem(
            "PARTICIPATION_OUT_OF_RANGE",
            f"min_participation={low} is above participation={participation}",
        )
    if high is not None and high < participation:
        return ParamProblem(
            "PARTICIPATION_OUT_OF_RANGE",
            f"max_participation={high} is below participation={participation}",
        )
    if isinstance(min_child_quantity, Decimal) and min_child_quantity > quantity:
        return ParamProblem(
            "INVALID_PARAMETER",
            f"min_child_quantity={min_child_quantity} is above the parent's quantity {quantity}",
        )
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class VwapParams(AlgoParams):
    """Volume-weighted: fill in proportion to a volume profile over ``duration`` seconds.

    ``profile`` has one weight per equal-length bucket of the window (any
    scale: percentages, or volumes observed earlier, see
    ``VolumeProfile.from_trades``). The algorithm wakes every ``interval``
    seconds (default: a quarter of a bucket) and sends what the profile says
    should be filled by then, minus what is filled or still working. Where
    the venue streams its trades, each bucket's fills stay within
    [``min_participation``, ``max_participation``] of the market's volume in
    it. ``tolerance`` is how far (a fraction of the quantity) fills may stray
    from the profile before the algorithm logs that it is off schedule.
    ``limit_price`` None sends market children.

    **Observed profile**: with ``lookback`` (seconds) and ``buckets`` instead
    of ``profile``, the algorithm first watches the venue's public tape for
    ``lookback`` seconds (a warm-up: nothing is sent), bins the market's
    volume into ``buckets`` equal parts of it, and works ``duration`` from
    the end of the warm-up to that shape (the market's most recent pattern
    as the forecast of the next window). The learned weights are journaled
    with the parent (``ParentProfile``), so every later incarnation and a
    node restarted on its journal work the same profile. The venue must
    print its tape (``MarketDataKind.TRADES``), else the parent is denied
    ``NO_TAPE``.
    """

    duration: float
    profile: tuple[Decimal, ...] = ()
    interval: float | None = None
    limit_price: Decimal | None = None
    min_participation: Decimal | None = None
    max_participation: Decimal | None = None
    tolerance: Decimal = Decimal("0.05")
    lookback: float | None = None
    buckets: int | None = None

    def __post_init__(self) -> None:
        _check_number(self, "duration", self.duration)
        _check_number(self, "interval", self.interval, optional=True)
        _check_number(self, "lookback", self.lookback, optional=True)
        if self.buckets is not None and (
            isinstance(self.buckets, bool) or not isinstance(self.buckets, int)
        ):
            raise ValueError(f"VwapParams.buckets={self.buckets!r}: must be an int")
        if not isinstance(self.profile, tuple | list):
            raise ValueError(f"VwapParams.profile={self.profile!r}: must be a tuple of Decimals")
        object.__setattr__(self, "profile", tuple(self.profile))
        for index, weight in enumerate(self.profile):
            check_decimal(self, f"profile[{index}]", weight)
        check_decimal(self, "limit_price", self.limit_price, optional=True)
        check_decimal(self, "min_participation", self.min_participation, optional=True)
        check_decimal(self, "max_participation", self.max_participation, optional=True)
        check_decimal(self, "tolerance", self.tolerance)
        object.__setattr__(self, "duration", float(self.duration))
        if self.interval is not None:
            object.__setattr__(self, "interval", float(self.interval))
        if self.lookback is not None:
            object.__setattr__(self, "lookback", float(self.lookback))

    @property
    def worst_price(self) -> Decimal | None:
        return self.limit_price

    @property
    def needs_tape(self) -> bool:
        """An observed profile is learned on the venue's public tape."""
        return self.lookback is not None

    def problems(self, quantity: Decimal) -> str | None:
        found = check_vwap(
            quantity=quantity,
            duration=self.duration,
            profile=self.profile,
            interval=self.interval,
            limit_price=self.limit_price,
            min_participation=self.min_participation,
            max_participation=self.max_participation,
            tolerance=self.tolerance,
            lookback=self.lookback,
            buckets=self.buckets,
        )
        return None if found is None else _described(self, found)


@dataclass(frozen=True, slots=True, kw_only=True)
class IcebergParams(AlgoParams):
    """Show ``display_quantity`` at ``limit_price`` at a time; refresh when it fills.

    Never more than ``display_quantity`` of the parent rests at the venue.
    ``price_offset`` (optional) draws each refresh's price within that
    distance of the limit on the passive side (seeded by the parent id and
    the refresh number), never worse than the limit.
    """

    display_quantity: Decimal
    limit_price: Decimal
    price_offset: Decimal | None = None

    def __post_init__(self) -> None:
        check_decimal(self, "display_quantity", self.display_quantity)
        check_decimal(self, "limit_price", self.limit_price)
        check_decimal(self, "price_offset", self.price_offset, optional=True)

    @property
    def worst_price(self) -> Decimal | None:
        return self.limit_price

    def problems(self, quantity: Decimal) -> str | None:
        found = check_iceberg(
            quantity=quantity,
            display_quantity=self.display_quantity,
            limit_price=self.limit_price,
            price_offset=self.price_offset,
        )
        return None if found is None else _described(self, found)


@dataclass(frozen=True, slots=True, kw_only=True)
class PovParams(AlgoParams):
    """Percent of volume: trade ``participation`` of the market's volume.

    The market's volume is the venue's public trade stream since the parent
    started, excluding the parent's own fills. The parent's fills stay within
    [``min_participation``, ``max_participation``] of it (defaults 0 and
    ``participation``): a child is never large enough to break the maximum
    even if every open child fills; below the minimum the catch-up child is
    sent at market. The algorithm looks every ``interval`` seconds; children
    below ``min_child_quantity`` wait for more volume. ``duration`` (optional)
    ends the parent, expired, when it is reached. ``limit_price`` None sends
    market children.
    """

    participation: Decimal
    min_participation: Decimal | None = None
    max_participation: Decimal | None = None
    min_child_quantity: Decimal | None = None
    limit_price: Decimal | None = None
    interval: float = 1.0
    duration: float | None = None

    def __post_init__(self) -> None:
        check_decimal(self, "participation", self.participation)
        check_decimal(self, "min_participation", self.min_participation, optional=True)
        check_decimal(self, "max_participation", self.max_participation, optional=True)
        check_decimal(self, "min_child_quantity", self.min_child_quantity, optional=True)
        check_decimal(self, "limit_price", self.limit_price, optional=True)
        _check_number(self, "interval", self.interval)
        _check_number(self, "duration", self.duration, optional=True)
        object.__setattr__(self, "interval", float(self.interval))
        if self.duration is not None:
            object.__setattr__(self, "duration", float(self.duration))

    @property
    def worst_price(self) -> Decimal | None:
        return self.limit_price

    def problems(self, quantity: Decimal) -> str | None:
        found = check_pov(
            quantity=quantity,
            participation=self.participation,
            min_participation=self.min_participation,
            max_participation=self.max_participation,
            min_child_quantity=self.min_child_quantity,
            limit_price=self.limit_price,
            duration=self.duration,
            interval=self.interval,
        )
        return None if found is None else _described(self, found)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentProfile(Message):
    """The volume profile a parent's algorithm learned from the market, and when
    the schedule it shapes starts (node-clock ns).

    The algorithm tells the OMS, which journals it with the parent (a
    ``PARENT`` entry) before any child is sent: a venue never replays its
    tape, so a later incarnation, or a node restarted on its journal, reads
    the profile back instead of learning a different one.
    ``observed_from_ns`` is where the lookback it was learned on began.
    """

    parent_id: str
    weights: tuple[Decimal, ...]
    start_ns: int
    observed_from_ns: int = 0
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "parent_id", self.parent_id)
        if not isinstance(self.weights, tuple | list):
            raise ValueError(f"ParentProfile.weights={self.weights!r}: must be a tuple")
        object.__setattr__(self, "weights", tuple(self.weights))
        for index, weight in enumerate(self.weights):
            check_decimal(self, f"weights[{index}]", weight)
        problem = profile_problem(self.weights)
        if problem is not None:
            raise ValueError(f"ParentProfile.{problem.reason}")
        check_timestamp(self, "start_ns", self.start_ns)
        check_timestamp(self, "observed_from_ns", self.observed_from_ns)
        check_timestamp(self, "ts_ns", self.ts_ns)


#: What the message codec registers from this module, with their wire tags
#: (never change a tag).
ALGO_MESSAGES: Final[tuple[tuple[type[Message], str], ...]] = (
    (VwapParams, "vwap_params"),
    (IcebergParams, "iceberg_params"),
    (PovParams, "pov_params"),
    (ParentProfile, "parent_profile"),
)


def _described(params: AlgoParams, problem: ParamProblem) -> str:
    return f"{problem.code}: {type(params).__name__}.{problem.reason}"


def _check_number(owner: object, field: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{type(owner).__name__}.{field}={value!r}: must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{type(owner).__name__}.{field}={value!r}: must be finite")
