"""VWAP as a pure policy: a volume profile turned into a fill schedule.

A volume-weighted average price is matched by trading in proportion to the
market's volume: when the market trades 30 % of its volume in the first
bucket of the window, so does the algorithm. The profile (one weight per
equal-length bucket of the window) comes from configuration or from market
volume observed earlier (:meth:`VolumeProfile.from_trades` bins a venue's
trade stream); within a bucket volume is taken to be uniform, so the target
is a piecewise-linear curve from 0 at the start to the whole quantity at the
end.

The policy holds no mutable state: the actor hands it what the OMS knows
(filled, still open at the venue) and, where the venue streams trades, the
market volume of the current bucket; the answer is the next child's size. A
restarted actor therefore resumes from the venues' view, never from memory.
Children are never larger than what is left once every open child fills,
so a parent never over-fills.

**Observed profile** (``VwapParams.lookback`` and ``buckets``): there are
no past sessions to average here, so the profile is the market's most
recent pattern. The algorithm watches the venue's tape for ``lookback``
seconds before it sends anything (a warm-up), bins what printed by the
node's clock at receipt (a venue's own timestamps may be on another clock)
into ``buckets`` equal parts, and works ``duration`` from the end of the
warm-up to that shape. A rolling estimate updated during the window was
the alternative; it was not taken because a profile that moves while it is
followed has no fixed target to be held to (the tolerance) and, being
rebuilt from a tape no venue replays, could not be the same after a
restart. The learned weights and the schedule's start are journaled with
the parent (``ParentProfile``, told to the OMS before the first child):
every later incarnation, and a node restarted on its journal, reads them
back and works the same profile. An incarnation that dies during the
warm-up has sent nothing and learned nothing durable: the next one watches
a whole lookback again from when it subscribed (a profile from part of the
lookback would be a different profile), so the schedule starts later, never
on a guess. A lookback in which the tape printed nothing ends the parent
(EXPIRED, nothing sent) with that reason.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..actors._oms_parents import ParentView
from ..messages._algos import ParamProblem, ParentProfile, VwapParams, profile_problem
from ..messages._enums import OrderStatus, OrderType
from ..messages._execution import child_number, child_order_id
from ..messages._market import MarketTrade
from ._algorithm import AlgorithmEnv, ChildIntent, Decision, register_algorithm
from ._sizing import floor_to_lot, seconds_to_ns
from ._tape import TapeAlgorithm

__all__ = ["DEFAULT_VWAP_TOLERANCE", "VolumeProfile", "VwapAlgorithm", "VwapPolicy"]

logger = logging.getLogger("tradenode.execution")

_ZERO = Decimal(0)

DEFAULT_VWAP_TOLERANCE = Decimal("0.05")
"""How far (a fraction of the parent's quantity) fills may stray from the profile."""


@dataclass(frozen=True, slots=True)
class VolumeProfile:
    """The share of the window's volume each equal-length bucket carries.

    ``weights`` are stored as given (any scale: percentages, observed
    volumes); ``shares`` are normalised to sum to one. Build one with
    :meth:`parse` (or :meth:`from_trades`), which answers a
    :class:`ParamProblem` instead of raising for an empty, negative or
    all-zero profile.
    """

    weights: tuple[Decimal, ...]

    @classmethod
    def parse(cls, weights: Sequence[object]) -> VolumeProfile | ParamProblem:
        problem = profile_problem(weights)
        if problem is not None:
            return problem
        return cls(tuple(Decimal(weight) for weight in weights))  # type: ignore[arg-type]

    @classmethod
    def from_trades(
        cls,
        trades: Iterable[tuple[int, Decimal]],
        *,
        start_ns: int,
        bucket_ns: int,
        buckets: int,
    ) -> VolumeProfile | ParamProblem:
        """A profile from observed market volume: ``(ts_ns, quantity)`` trades
        binned into ``buckets`` buckets of ``bucket_ns`` from ``start_ns`` (e.g.
        yesterday's session, or the last hour's tape); trades outside are ignored."""
        if buckets < 1 or bucket_ns <= 0:
            return ParamProblem("INVALID_PROFILE", "observed profile: needs buckets >= 1 of > 0 ns")
        volumes = [Decimal(0)] * buckets
        for ts_ns, quantity in trades:
            index = (ts_ns - start_ns) // bucket_ns
            if 0 <= index < buckets:
                volumes[index] += quantity
        return cls.parse(volumes)

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def shares(self) -> tuple[Decimal, ...]:
        total = sum(self.weights, Decimal(0))
        return tuple(weight / total for weight in self.weights)

    def cumulative(self, elapsed: Decimal) -> Decimal:
        """The share of the window's volume expected by ``elapsed`` (a fraction of
        the window in [0, 1]): whole buckets before it, plus the elapsed part of its
        bucket (volume uniform within a bucket)."""
        if elapsed <= 0:
            return Decimal(0)
        if elapsed >= 1:
            return Decimal(1)
        shares = self.shares
        position = elapsed * len(shares)
        whole = int(position)
        done = sum(shares[:whole], Decimal(0))
        return done + shares[whole] * (position - whole)


class VwapPolicy:
    """How much of ``quantity`` should be filled by a moment, and the child that gets there."""

    def __init__(
        self,
        *,
        quantity: Decimal,
        start_ns: int,
        duration_ns: int,
        profile: VolumeProfile,
        lot: Decimal,
        min_participation: Decimal | None = None,
        max_participation: Decimal | None = None,
        tolerance: Decimal = DEFAULT_VWAP_TOLERANCE,
    ) -> None:
        self.quantity = quantity
        self.start_ns = start_ns
        self.duration_ns = duration_ns
        self.end_ns = start_ns + duration_ns
        self.profile = profile
        self.lot = lot
        self.min_participation = min_participation
        self.max_participation = max_participation
        self.tolerance = tolerance

    @property
    def bucket_ns(self) -> int:
        return self.duration_ns // len(self.profile)

    def elapsed(self, now_ns: int) -> Decimal:
        return Decimal(min(max(now_ns - self.start_ns, 0), self.duration_ns)) / self.duration_ns

    def bucket(self, now_ns: int) -> int:
        """The profile bucket ``now_ns`` falls in (the last one from the end on)."""
        index = int(self.elapsed(now_ns) * len(self.profile))
        return min(index, len(self.profile) - 1)

    def bucket_start_ns(self, index: int) -> int:
        return self.start_ns + self.duration_ns * index // len(self.profile)

    def target_filled(self, now_ns: int) -> Decimal:
        """What the profile says should be filled by ``now_ns``, in whole lots."""
        if now_ns >= self.end_ns:
            return self.quantity
        return floor_to_lot(self.quantity * self.profile.cumulative(self.elapsed(now_ns)), self.lot)

    def deviation(self, now_ns: int, filled: Decimal) -> Decimal:
        """Filled minus the schedule, as a fraction of the quantity (negative: behind)."""
        return (filled - self.target_filled(now_ns)) / self.quantity

    def within_tolerance(self, now_ns: int, filled: Decimal) -> bool:
        return abs(self.deviation(now_ns, filled)) <= self.tolerance

    def next_quantity(
        self,
        now_ns: int,
        *,
        filled: Decimal,
        open_quantity: Decimal,
        bucket_volume: Decimal | None = None,
        bucket_filled: Decimal = Decimal(0),
    ) -> Decimal:
        """The next child's size (0: send nothing now).

        The schedule's shortfall (target minus filled minus still open),
        bounded by participation when the bucket's market volume is known
        (``bucket_volume``, excluding our own fills; ``bucket_filled``: what
        this parent filled in the bucket): never above ``max_participation``
        of it, raised to ``min_participation`` of it when the market trades
        more than the profile expected. Never more than what is left once
        every open child fills.
        """
        remaining = self.quantity - filled - open_quantity
        if remaining <= 0:
            return Decimal(0)
        wanted = self.target_filled(now_ns) - filled - open_quantity
        if bucket_volume is not None:
            committed = bucket_filled + open_quantity
            if self.min_participation is not None:
                wanted = max(wanted, self.min_participation * bucket_volume - committed)
            if self.max_participation is not None:
                wanted = min(wanted, self.max_participation * bucket_volume - committed)
        return floor_to_lot(min(wanted, remaining), self.lot)


class VwapAlgorithm(TapeAlgorithm):
    """Works a parent whose ``algorithm`` is ``VwapParams`` (see the module docstring).

    It wakes every ``interval`` (a quarter of a bucket by default) on a grid
    from the parent's accept time, and sends the policy's child as
    ``<parent>-<n>``. Where the parameters bound participation and the venue
    prints its tape, each bucket's market volume (the tape minus the
    parent's own fills, counted from the bucket's start or from when this
    incarnation subscribed, whichever is later) bounds the child. Once the
    window is over, children still working are cancelled and a parent short
    of its target (limit children that did not fill) is finished.
    """

    def __init__(self, parent_id: str, env: AlgorithmEnv) -> None:
        super().__init__(parent_id, env)
        self._policy: VwapPolicy | None = None
        self._bucket: int | None = None
        self._bucket_tape = Decimal(0)
        self._bucket_filled_base: Decimal | None = None
        self._off_schedule_logged = False
        self._observed: list[tuple[int, Decimal]] = []
        """Warm-up prints of an observed profile: (node-clock ns at receipt, quantity)."""

    def policy(self, view: ParentView) -> VwapPolicy:
        if self._policy is None:
            params = _vwap_params(view)
            if params.lookback is None:
                start_ns, weights = view.accepted_ns, params.profile
            elif view.profile is not None:
                start_ns, weights = view.profile.start_ns, view.profile.weights
            else:
                raise RuntimeError(f"{self.parent_id}: its profile is not learned yet")
            self._policy = VwapPolicy(
                quantity=view.target,
                start_ns=start_ns,
                duration_ns=seconds_to_ns(params.duration),
                profile=VolumeProfile(weights),
                lot=self.env.lot_size(view.order.symbol, view.target),
                min_participation=params.min_participation,
                max_participation=params.max_participation,
                tolerance=params.tolerance,
            )
        return self._policy

    def interval_ns(self, view: ParentView) -> int:
        params = _vwap_params(view)
        policy = self.policy(view)
        if params.interval is not None:
            return max(1, seconds_to_ns(params.interval))
        return max(1, policy.bucket_ns // 4)

    def on_print(self, trade: MarketTrade) -> None:
        if self._policy is None:
            if self.has_tape:
                self._observed.append((self.context.now_ns(), trade.quantity))
            return
        bucket = self._policy.bucket(self.context.now_ns())
        if bucket != self._bucket:
            # A new bucket began before this wake: its fills count from the next look.
            self._bucket, self._bucket_tape, self._bucket_filled_base = bucket, _ZERO, None
        self._bucket_tape += trade.quantity

    def warm_up(self, view: ParentView, params: VwapParams, now_ns: int) -> Decision | ParentView:
        """An observed profile not learned yet: wait out the lookback, then learn it
        (journaled through the OMS) and answer the view that carries it."""
        assert params.lookback is not None and params.buckets is not None
        if not self.has_tape:
            return Decision(finish=f"VWAP: venue {view.order.venue} prints no trades to observe")
        bucket_ns = seconds_to_ns(params.lookback) // params.buckets
        start = self.subscribed_ns
        end = start + bucket_ns * params.buckets
        if now_ns < end:
            return Decision(wake_at_ns=end)
        profile = VolumeProfile.from_trades(
            self._observed, start_ns=start, bucket_ns=bucket_ns, buckets=params.buckets
        )
        self._observed = []
        if isinstance(profile, ParamProblem):
            return Decision(
                finish=(
                    f"VWAP: no market volume observed in its {params.lookback:g} s lookback "
                    f"({profile.code})"
                )
            )
        learned = ParentProfile(
            parent_id=view.parent_id,
            weights=profile.weights,
            start_ns=end,
            observed_from_ns=start,
            ts_ns=now_ns,
        )
        logger.info(
            "execution: %s learned its VWAP profile over %s s: %s",
            self.parent_id,
            params.lookback,
            ", ".join(str(w) for w in profile.weights),
        )
        # Before any child: the OMS journals it ahead of everything the child causes.
        self.env.directory.oms().tell(learned)
        return dataclasses.replace(view, profile=learned)

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        params = _vwap_params(view)
        if params.lookback is not None and view.profile is None:
            learned = self.warm_up(view, params, now_ns)
            if isinstance(learned, Decision):
                return learned
            view = learned
        policy = self.policy(view)
        bounded = params.min_participation is not None or params.max_participation is not None
        bucket = policy.bucket(now_ns)
        if bucket != self._bucket:
            self._bucket, self._bucket_tape, self._bucket_filled_base = bucket, _ZERO, view.filled
        elif self._bucket_filled_base is None:
            self._bucket_filled_base = view.filled
        step = self.interval_ns(view)
        elapsed = now_ns - policy.start_ns
        next_wake = policy.start_ns + (elapsed // step + 1) * step
        if now_ns >= policy.end_ns + step:
            # The window is over and its last child had an interval to fill.
            if view.open_children:
                return Decision(cancels=_cancellable(view), wake_at_ns=now_ns + step)
            if view.filled < view.target:
                return Decision(
                    finish=f"VWAP window over with {view.filled} of {view.target} filled"
                )
            return Decision()
        if now_ns >= policy.end_ns:
            next_wake = policy.end_ns + step
        else:
            next_wake = min(next_wake, policy.end_ns)
        if not policy.within_tolerance(now_ns, view.filled) and not self._off_schedule_logged:
            self._off_schedule_logged = True
            logger.warning(
                "execution: %s is off its VWAP profile: %s filled, %s scheduled by now",
                self.parent_id,
                view.filled,
                policy.target_filled(now_ns),
            )
        bucket_volume: Decimal | None = None
        base = self._bucket_filled_base
        bucket_filled = _ZERO if base is None else view.filled - base
        if bounded and self.has_tape:
            # Open children count as already printed (see TapeAlgorithm.market_volume).
            bucket_volume = max(_ZERO, self._bucket_tape - bucket_filled - view.open_quantity)
        quantity = policy.next_quantity(
            now_ns,
            filled=view.filled,
            open_quantity=view.open_quantity,
            bucket_volume=bucket_volume,
            bucket_filled=bucket_filled,
        )
        quantity = min(quantity, floor_to_lot(view.available, policy.lot))
        if quantity <= 0:
            return Decision(wake_at_ns=next_wake)
        number = _next_child_number(view)
        if params.limit_price is None:
            child = ChildIntent(child_order_id(view.parent_id, number), quantity)
        else:
            child = ChildIntent(
                child_order_id(view.parent_id, number),
                quantity,
                OrderType.LIMIT,
                price=params.limit_price,
            )
        return Decision(children=(child,), wake_at_ns=next_wake)


def _vwap_params(view: ParentView) -> VwapParams:
    params = view.order.algorithm
    if not isinstance(params, VwapParams):
        raise TypeError(f"{view.parent_id}: not a VWAP parent ({params.name})")
    return params


def _next_child_number(view: ParentView) -> int:
    """One more than the highest child number the OMS knows of (the same in every
    incarnation: the OMS has every child this parent ever sent)."""
    numbers = (child_number(view.parent_id, cid) for cid in view.child_ids)
    return 1 + max((n[0] for n in numbers if n is not None), default=0)


def _cancellable(view: ParentView) -> tuple[str, ...]:
    return tuple(
        c.client_order_id for c in view.open_children if c.status is not OrderStatus.PENDING_CANCEL
    )


register_algorithm(VwapParams, VwapAlgorithm)
