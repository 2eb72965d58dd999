"""Client-side rate limits, pure and driven by an injected monotonic clock.

A venue that sees us exceed its limit answers 429 and, if we persist, bans
us (418): the rate limiter exists so the circuit breaker never has to open
for a reason we caused ourselves. Limits are whatever the venue says (its
exchange info, its response headers); nothing here knows any venue's
numbers.

Two shapes cover the venues we speak to: ``TokenBucket`` for a published
requests-per-second limit, and ``WeightedLimiter`` for venues that charge
each request a weight and report the weight used in their headers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

__all__ = ["TokenBucket", "WeightedLimiter"]

_EPSILON = 1e-9
"""Float slack, so waiting exactly ``seconds_until(n)`` always makes ``try_acquire(n)`` succeed."""


def _check_amount(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value}: must be finite and > 0")


def _slack(amount: float) -> float:
    return _EPSILON * max(1.0, amount)


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate_per_second``; starts full.

    ``pause_until(t)`` empties the bucket and starts refilling only at ``t``:
    a 429 proves our picture of the venue's budget was wrong, so we come
    back slowly at ``t`` rather than with a full burst at the very moment
    every other throttled client returns. A request larger than the
    capacity can never pass; ``try_acquire`` says False and
    ``seconds_until`` says ``math.inf`` rather than raising, because the
    capacity may have been lowered by the venue at run time.
    """

    def __init__(
        self, rate_per_second: float, capacity: float, *, monotonic: Callable[[], float]
    ) -> None:
        _check_amount("TokenBucket.rate_per_second", rate_per_second)
        _check_amount("TokenBucket.capacity", capacity)
        self._monotonic = monotonic
        self._rate = rate_per_second
        self._capacity = capacity
        self._tokens = capacity
        self._stamp = monotonic()
        self._paused_until = -math.inf

    @property
    def rate_per_second(self) -> float:
        return self._rate

    @property
    def capacity(self) -> float:
        return self._capacity

    @property
    def paused_until(self) -> float | None:
        return None if math.isinf(self._paused_until) else self._paused_until

    def available(self) -> float:
        self._refill(self._monotonic())
        return self._tokens

    def try_acquire(self, n: float = 1.0) -> bool:
        # The breaker takes the default single token for every request it sends:
        # 1.0 is finite and positive, so checking it again would prove nothing
        # (anything else, NaN included, compares unequal and is checked).
        if n != 1.0:
            _check_amount("n", n)
        now = self._monotonic()
        if now > self._stamp:  # ``_refill``, inlined on the per-request path
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
        if now < self._paused_until or n > self._capacity:
            return False
        if self._tokens + _EPSILON * max(1.0, n) < n:  # ``_slack(n)``
            return False
        self._tokens = max(0.0, self._tokens - n)
        return True

    def seconds_until(self, n: float = 1.0) -> float:
        """How long until ``try_acquire(n)`` would succeed, if nobody else takes tokens."""
        _check_amount("n", n)
        if n > self._capacity:
            return math.inf
        now = self._monotonic()
        self._refill(now)
        deficit = n - self._tokens
        refill_done = self._stamp + (deficit / self._rate if deficit > _slack(n) else 0.0)
        return max(0.0, refill_done - now, self._paused_until - now)

    def set_rate(self, rate_per_second: float, capacity: float | None = None) -> None:
        """Adopt a limit the venue announced; tokens earned so far were earned at the old rate."""
        _check_amount("rate_per_second", rate_per_second)
        if capacity is not None:
            _check_amount("capacity", capacity)
        self._refill(self._monotonic())
        self._rate = rate_per_second
        if capacity is not None:
            self._capacity = capacity
            self._tokens = min(self._tokens, capacity)

    def pause_until(self, t: float) -> None:
        """No tokens before monotonic time ``t`` (a Retry-After); an earlier pause never shortens a later one."""
        self._refill(self._monotonic())
        self._tokens = 0.0
        self._stamp = max(self._stamp, t)
        self._paused_until = max(self._paused_until, t)

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now


class WeightedLimiter:
    """Spend request weight so the venue's own counter never passes its limit.

    The model. The venue counts the weight of our requests over windows of
    ``window_seconds`` (fixed windows at an alignment we cannot see, or a
    sliding window) and refuses past ``limit``. We keep two upper bounds on
    the venue's counter and spend only while the larger one leaves room:

    * **Our own log**: the weight we sent in the last ``window_seconds``.
      Any venue window, fixed or sliding, lies inside some span of that
      length, so it can never hold more of our weight than the log allows,
      whatever its alignment. This bound alone is safe for a key nobody
      else uses.
    * **The venue's floor**: a response reporting ``used`` for a request
      sent at ``sent_at`` means the counter was ``used`` when that request
      was processed; until its window surely rolled over (``window_seconds``
      after the observation) the counter is at most ``used`` plus all we
      sent since ``sent_at``. This brings in what the log cannot know:
      other processes sharing the API key, and requests weighing more than
      we thought.

    A newer observation (a later ``sent_at``) replaces an older one; a reply
    overtaken by a newer one is ignored, because its count is older. The
    bounds assume the venue processes our requests in the order we send
    them and that foreign traffic after the last observation is covered by
    ``headroom``, the fraction of the limit we leave unused; that
    assumption is the only way the venue's limit could still be reached.
    Until a limit is known (constructor or first observation) the limiter
    admits everything: the venue's first response will say.
    """

    def __init__(
        self,
        *,
        monotonic: Callable[[], float],
        limit: float | None = None,
        window_seconds: float | None = None,
        headroom: float = 0.0,
    ) -> None:
        if (limit is None) != (window_seconds is None):
            raise ValueError(
                "WeightedLimiter: limit and window_seconds come together or not at all"
            )
        if limit is not None and window_seconds is not None:
            _check_amount("WeightedLimiter.limit", limit)
            _check_amount("WeightedLimiter.window_seconds", window_seconds)
        if not 0.0 <= headroom < 1.0:
            raise ValueError(f"WeightedLimiter.headroom={headroom}: must be within [0, 1)")
        self._monotonic = monotonic
        self._limit = limit
        self._window = window_seconds
        self._headroom = headroom
        self._log: deque[tuple[float, float]] = deque()
        self._log_total = 0.0
        self._floor = 0.0
        self._floor_sent_at = -math.inf
        self._floor_expires = -math.inf
        self._paused_until = -math.inf

    @property
    def limit(self) -> float | None:
        return self._limit

    @property
    def window_seconds(self) -> float | None:
        return self._window

    @property
    def budget(self) -> float | None:
        """The weight we allow ourselves per window: the venue's limit less the headroom."""
        return None if self._limit is None else self._limit * (1.0 - self._headroom)

    def observe_used_weight(
        self, used: float, limit: float, window_seconds: float, *, sent_at: float | None = None
    ) -> None:
        """Take in a response's used-weight header; ``sent_at`` is when that request left.

        Without ``sent_at`` the request is assumed to have left just now,
        which undercounts any of our requests still in flight; pass it
        when requests overlap.
        """
        if not (math.isfinite(used) and used >= 0):
            raise ValueError(f"used={used}: must be finite and >= 0")
        _check_amount("limit", limit)
        _check_amount("window_seconds", window_seconds)
        now = self._monotonic()
        self._limit = limit
        self._window = window_seconds
        self._prune(now)
        sent = now if sent_at is None else min(sent_at, now)
        if now < self._floor_expires and sent < self._floor_sent_at:
            return
        self._floor = used + sum(weight for at, weight in self._log if at >= sent)
        self._floor_sent_at = sent
        self._floor_expires = now + window_seconds

    def projected_used(self) -> float:
        """Our upper bound on the venue's counter right now."""
        now = self._monotonic()
        self._prune(now)
        return self._projected(now)

    def try_acquire(self, weight: float = 1.0) -> bool:
        _check_amount("weight", weight)
        now = self._monotonic()
        if now < self._paused_until:
            return False
        budget = self.budget
        if budget is None:
            return True
        self._prune(now)
        if self._projected(now) + weight > budget + _slack(budget):
            return False
        self._log.append((now, weight))
        self._log_total += weight
        if now < self._floor_expires:
            self._floor += weight
        return True

    def seconds_until(self, weight: float = 1.0) -> float:
        """How long until ``try_acquire(weight)`` would succeed, if we send nothing meanwhile."""
        _check_amount("weight", weight)
        now = self._monotonic()
        pause = max(0.0, self._paused_until - now)
        budget = self.budget
        if budget is None or self._window is None:
            return pause
        if weight > budget + _slack(budget):
            return math.inf
        self._prune(now)
        if pause == 0.0 and self._projected(now) + weight <= budget + _slack(budget):
            # The weight fits now: exactly what ``try_acquire`` checks, so the answer
            # is the one the question is about. The breaker asks this before every
            # order it sends, and the search below sorts the whole log (every request
            # of the window: hundreds of entries, ~100 us, at a venue that counts
            # orders per 10 s); it is needed only to say how long a wait is.
            return 0.0
        room = budget + _slack(budget) - weight
        moments = sorted(
            {now}
            | {at + self._window for at, _ in self._log}
            | ({self._floor_expires} if self._floor_expires > now else set())
        )
        entries = sorted(self._log)
        first_live = 0
        live_total = sum(weight_ for _, weight_ in entries)
        for moment in moments:
            while first_live < len(entries) and entries[first_live][0] + self._window <= moment:
                live_total -= entries[first_live][1]
                first_live += 1
            floor = self._floor if moment < self._floor_expires else 0.0
            if max(live_total, floor) <= room:
                return max(moment - now, pause)
        return pause

    def pause_until(self, t: float) -> None:
        """Send nothing before monotonic time ``t`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, t)

    def _projected(self, now: float) -> float:
        floor = self._floor if now < self._floor_expires else 0.0
        return max(self._log_total, floor)

    def _prune(self, now: float) -> None:
        if self._window is None:
            return
        while self._log and self._log[0][0] + self._window <= now:
            _, weight = self._log.popleft()
            self._log_total -= weight
        if not self._log:
            self._log_total = 0.0
