"""The campaign loop: node incarnations killed at seeded moments, faults, settling, verdicts.

Everything the drill decides comes from ``random.Random(seed)``, drawn up
front into a plan (each fault gets a seed of its own, so a fault skipped
because its node died early changes nothing after it). Wall time decides
only where in the node's work each seeded moment lands.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...messages import OrderStatus
from ._invariants import (
    INVARIANTS,
    Death,
    InvariantResult,
    check_deaths,
    check_fills_exactly_once,
    check_held_placements,
    check_journal_sound,
    check_logical_orders_not_overfilled,
    check_no_secret_in_files,
    check_one_order_per_client_id,
    check_open_orders_agree,
    check_positions_match_balances,
    journal_problems,
    replay_journal,
)
from ._venue import CampaignVenue, VenueBooks, VenueSettings

__all__ = [
    "CRASH_EXIT_CODE",
    "CRASH_POINTS",
    "SCENARIOS",
    "CampaignSummary",
    "FaultStep",
    "IncarnationPlan",
    "IncarnationRecord",
    "node_config",
    "plan_campaign",
    "run_campaign",
]

SCENARIOS = ("random", "kills", "held-placement")
"""``random``: kills, crash points, held placements and venue faults, all seeded.
``kills``: the original crash drill (kills and crash points only, default settings).
``held-placement``: the directed case (a placement held past the node's death)."""

CRASH_POINTS = {
    "after_intent": (2, 30),
    "after_send": (2, 10),
    "before_fill_journaled": (1, 6),
}
"""``TRADENODE_CRASH_AT`` points, with the range their ``n`` is drawn from."""

CRASH_EXIT_CODE = 86
"""What a node exits with at its crash point (``tradenode._crashpoints``)."""

_KILLED = -signal.SIGKILL
_READY_TIMEOUT = 60.0
_HOLD_WAIT = 15.0
"""Seconds after it is ready that a ``held`` incarnation gets to send the placement to hold."""
_CRASH_POINT_CAP = 30.0
"""Seconds after it is ready that a node gets to reach its crash point before it is killed."""

_PENDING = (OrderStatus.INITIALIZED, OrderStatus.SUBMITTED)
"""Statuses of an order whose placement's fate the node did not know when it died."""


@dataclass(frozen=True, slots=True)
class FaultStep:
    """One fault of the plan: ``name`` from the venue's menu, at ``at`` seconds, with its own seed."""

    at: float
    name: str
    seed: int


@dataclass(frozen=True, slots=True)
class IncarnationPlan:
    """What one node process does and how it dies, decided before it starts."""

    number: int
    death: str
    """``kill``, ``held`` (killed while the venue holds a placement) or ``<point>:<n>``."""
    settings: VenueSettings
    breaker_timeout: float
    kill_after: float | None = None
    """``kill``: seconds after the node is ready; ``held``: after the venue holds a placement."""
    hold: float | None = None
    """``held``: how long the venue holds the next placement (armed before the node starts)."""
    before: tuple[FaultStep, ...] = ()
    """Faults injected before the node starts (``at`` is 0)."""
    during: tuple[FaultStep, ...] = ()
    """Faults injected ``at`` seconds after the node is ready."""

    @property
    def crash_at(self) -> str | None:
        return None if self.death in ("kill", "held") else self.death

    def describe(self) -> str:
        if self.death == "kill":
            death = f"SIGKILL {self.kill_after:.2f}s after ready"
        elif self.death == "held":
            death = (
                f"the venue holds the next placement {self.hold:.2f}s, "
                f"SIGKILL {self.kill_after:.2f}s after it does"
            )
        else:
            death = f"crash point {self.death}"
        parts = [
            f"incarnation {self.number}: {death}; {self.settings.describe()} "
            f"breaker.request_timeout={self.breaker_timeout}"
        ]
        if self.before:
            parts.append("before start: " + ", ".join(step.name for step in self.before))
        if self.during:
            parts.append(
                "during: " + ", ".join(f"+{step.at:.2f}s {step.name}" for step in self.during)
            )
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class IncarnationRecord:
    """What happened to one planned incarnation."""

    plan: IncarnationPlan
    returncode: int | None
    seconds: float
    injected: tuple[str, ...]
    log: Path
    journal_problems: tuple[str, ...]
    held_at_kill: tuple[str, ...] = ()
    """``held``: client order ids of the placements the venue was holding right after the kill."""
    in_flight: tuple[str, ...] = ()
    """``held``: client order ids the journal left pending that the venue did not have at the kill."""

    @property
    def expected_returncodes(self) -> tuple[int, ...]:
        return (CRASH_EXIT_CODE,) if self.plan.crash_at is not None else (_KILLED,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.plan.number,
            "plan": self.plan.describe(),
            "returncode": self.returncode,
            "seconds": round(self.seconds, 2),
            "injected": list(self.injected),
            "log": str(self.log),
            "journal_problems": list(self.journal_problems),
            "in_flight": list(self.in_flight),
            "held_at_kill": list(self.held_at_kill),
        }


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One seed's campaign: its plan as run and every invariant's verdict."""

    venue: str
    seed: int
    scenario: str
    workdir: Path
    incarnations: tuple[IncarnationRecord, ...]
    invariants: tuple[InvariantResult, ...]
    seconds: float
    settle_returncodes: tuple[int | None, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.invariants)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(result.name for result in self.invariants if not result.passed)

    def result(self, name: str) -> InvariantResult:
        for result in self.invariants:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "seed": self.seed,
            "scenario": self.scenario,
            "workdir": str(self.workdir),
            "passed": self.passed,
            "failed": list(self.failed),
            "seconds": round(self.seconds, 1),
            "incarnations": [record.to_dict() for record in self.incarnations],
            "settle_returncodes": list(self.settle_returncodes),
            "invariants": [result.to_dict() for result in self.invariants],
        }


# --------------------------------------------------------------------- plan


def _breaker_timeout(rng: random.Random | None, settings: VenueSettings) -> float:
    """Never below the acceptance window plus a second (the config refuses shorter)."""
    spare = 1.0 if rng is None else rng.uniform(0.0, 3.0)
    return round(settings.acceptance_window + 1.0 + spare, 2)


def _crash_point(rng: random.Random, point: str) -> str:
    low, high = CRASH_POINTS[point]
    return f"{point}:{rng.randint(low, high)}"


def _steps(
    rng: random.Random, menu: Sequence[str], count: int, until: float
) -> tuple[FaultStep, ...]:
    steps = [
        FaultStep(
            round(rng.uniform(0.05, max(0.1, until)), 2), rng.choice(menu), rng.getrandbits(32)
        )
        for _ in range(count)
    ]
    return tuple(sorted(steps, key=lambda step: step.at))


def plan_campaign(
    venue: CampaignVenue, scenario: str, seed: int, incarnations: int
) -> list[IncarnationPlan]:
    """The whole seeded plan of one campaign (nothing about it depends on wall time)."""
    rng = random.Random(seed)
    if scenario == "kills":
        return _plan_kills(venue, rng, incarnations)
    if scenario == "held-placement":
        settings = venue.held_placement_settings()
        hold = round(settings.acceptance_window * 0.9, 2)
        return [
            IncarnationPlan(
                number=1,
                death="held",
                settings=settings,
                breaker_timeout=_breaker_timeout(None, settings),
                hold=hold,
                kill_after=round(rng.uniform(0.2, 1.0), 2),
            )
        ]
    if scenario != "random":
        raise ValueError(f"scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    menu = sorted(venue.faults())
    # Each kind of death at least once (when there are enough incarnations), the rest drawn.
    deaths = ["kill", "held", *CRASH_POINTS]
    deaths += [
        rng.choice(["kill", "kill", "held", *CRASH_POINTS])
        for _ in range(max(0, incarnations - len(deaths)))
    ]
    rng.shuffle(deaths)
    plans = []
    for number, death in enumerate(deaths[:incarnations], start=1):
        settings = venue.draw_settings(rng)
        breaker = _breaker_timeout(rng, settings)
        if death == "held":
            hold = round(settings.acceptance_window * rng.uniform(0.6, 0.95), 2)
            plans.append(
                IncarnationPlan(
                    number=number,
                    death="held",
                    settings=settings,
                    breaker_timeout=breaker,
                    hold=hold,
                    kill_after=round(hold * rng.uniform(0.1, 0.7), 2),
                )
            )
            continue
        before = tuple(
            FaultStep(0.0, rng.choice(menu), rng.getrandbits(32))
            for _ in range(rng.choice((0, 0, 1, 2)))
        )
        if death == "kill":
            kill_after = round(rng.uniform(0.5, 4.0), 2)
            during = _steps(rng, menu, rng.randint(0, 3), kill_after)
            plans.append(
                IncarnationPlan(
                    number=number,
                    death="kill",
                    settings=settings,
                    breaker_timeout=breaker,
                    kill_after=kill_after,
                    before=before,
                    during=during,
                )
            )
        else:
            plans.append(
                IncarnationPlan(
                    number=number,
                    death=_crash_point(rng, death),
                    settings=settings,
                    breaker_timeout=breaker,
                    before=before,
                    during=_steps(rng, menu, rng.randint(0, 3), 3.0),
                )
            )
    return plans


def _plan_kills(
    venue: CampaignVenue, rng: random.Random, incarnations: int
) -> list[IncarnationPlan]:
    """The original drill: kills and crash points in a fixed pattern, no venue faults."""
    pattern = [
        None,
        "after_intent",
        None,
        "after_send",
        "before_fill_journaled",
        None,
        "after_intent",
        None,
    ]
    settings = venue.draw_settings(None)
    breaker = _breaker_timeout(None, settings)
    plans = []
    for number in range(1, incarnations + 1):
        point = pattern[(number - 1) % len(pattern)]
        if point is None:
            death, kill_after = "kill", round(rng.uniform(0.8, 2.0), 2)
        else:
            death, kill_after = _crash_point(rng, point), None
        plans.append(IncarnationPlan(number, death, settings, breaker, kill_after=kill_after))
    return plans


# ------------------------------------------------------------------ configs


_PRESUMED_WINDOW_MARGIN = 5.0
"""Seconds past the campaign venue's acceptance window before the node's breaker
presumes a missing request never arrived (room for a loaded machine's timers)."""


def node_config(
    venue: CampaignVenue,
    settings: VenueSettings,
    breaker_timeout: float,
    journal: Path,
    *,
    trading: bool,
) -> dict[str, Any]:
    """The node's config as plain data (secrets only as ``${ENV}`` references)."""
    entry = venue.venue_config(settings)
    entry["breaker"] = {
        "request_timeout": breaker_timeout,
        "rate_per_second": 200,
        "burst": 200,
        # A venue that names no acceptance window (IB) is presumed to accept for this
        # long; the campaign's venue never holds a request past its own window, so a
        # request still missing this much later never arrives. The default (60 s) would
        # outlast the settle runs and leave such an order pending in the journal.
        "unknown_outcome_timeout": settings.acceptance_window + _PRESUMED_WINDOW_MARGIN,
    }
    strategies = (
        [
            {
                "id": "drill",
                "kind": "example",
                "venue": venue.name,
                "symbols": list(venue.symbols),
                "cycle_time_ms": 50,
            }
        ]
        if trading
        else []
    )
    return {
        "node": {
            "name": "drillnode",
            "seed": 1,
            "intensity": {"max_restarts": 50, "within_seconds": 60},
        },
        "broker_backoff": {"min_seconds": 0.2, "max_seconds": 1, "random_factor": 0},
        "venues": [entry],
        "risk": {"max_open_orders": 40, "max_order_quantity": "5"},
        "oms": {"ack_timeout": 3},
        "journal": {"path": str(journal), "fsync": "group", "snapshot_every": 400},
        "status_interval": 60,
        "strategies": strategies,
    }


# ------------------------------------------------------------------ process


class _Node:
    """One ``tradenode run`` subprocess: stderr to ``<label>.log``, stdout to ``<label>.out``."""

    def __init__(
        self,
        config: Path,
        label: str,
        env: Mapping[str, str],
        *,
        crash_at: str | None = None,
        duration: float | None = None,
    ) -> None:
        environment = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        environment.pop("TRADENODE_CRASH_AT", None)
        if crash_at is not None:
            environment["TRADENODE_CRASH_AT"] = crash_at
        args = [sys.executable, "-m", "tradenode", "run", str(config), "--log-level", "INFO"]
        if duration is not None:
            summary = config.with_name(f"{label}-summary.json")
            args += ["--duration", str(duration), "--summary-json", str(summary)]
        self.log = config.with_name(f"{label}.log")
        self._stderr = self.log.open("w", encoding="utf-8")
        self._stdout = config.with_name(f"{label}.out").open("w", encoding="utf-8")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=environment
        )
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"drill-{label}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        for line in stream:
            self._stdout.write(line)
            self._stdout.flush()
            if " running" in line:
                self._ready.set()

    def wait_ready(self, timeout: float) -> bool:
        """Until the node says it is running (True), or it died or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.05):
                return True
            if self.process.poll() is not None:
                return False
        return False

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` of wall time (a seeded moment); False if the node died meanwhile."""
        if seconds > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=seconds)
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    def finish(self, timeout: float) -> int | None:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait(timeout=30)
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()
        self._stdout.close()
        return code


# ------------------------------------------------------------------- runner


class _Campaign:
    def __init__(
        self,
        venue: CampaignVenue,
        *,
        seed: int,
        scenario: str,
        workdir: Path,
        echo: Callable[[str], None],
    ) -> None:
        self.venue = venue
        self.seed = seed
        self.scenario = scenario
        self.workdir = workdir
        self.journal = workdir / "journal"
        self.echo = echo
        self.menu = venue.faults()
        self.journal_checks: dict[str, list[str]] = {}
        self.deaths: list[Death] = []

    def _write_config(self, label: str, config: Mapping[str, Any]) -> Path:
        path = self.workdir / f"{label}.yaml"
        path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
        return path

    def _inject(self, step: FaultStep, when: str) -> str:
        try:
            what = self.menu[step.name](random.Random(step.seed))
        except Exception as error:  # noqa: BLE001 - a refused fault is reported, not fatal
            what = f"{step.name} FAILED TO INJECT: {error}"
        line = f"{when} {what}"
        self.echo(f"    {line}")
        return line

    def incarnation(self, plan: IncarnationPlan) -> IncarnationRecord:
        self.echo(f"  {plan.describe()}")
        label = f"incarnation-{plan.number}"
        config = self._write_config(
            label,
            node_config(
                self.venue, plan.settings, plan.breaker_timeout, self.journal, trading=True
            ),
        )
        injected = [self._inject(step, "before start:") for step in plan.before]
        held_at_kill: tuple[str, ...] = ()
        if plan.death == "held":
            assert plan.hold is not None
            what = self.venue.hold_placements(plan.hold)
            injected.append(f"before start: {what}")
            self.echo(f"    before start: {what}")
        node = _Node(config, label, self.venue.node_environment(), crash_at=plan.crash_at)
        not_reached = False
        ready = node.wait_ready(_READY_TIMEOUT)
        if not ready and node.process.poll() is None:
            injected.append(f"not ready within {_READY_TIMEOUT:.0f}s: killed")
            node.kill()
        ready_at = time.monotonic()

        def at(offset: float) -> bool:
            return node.pause(ready_at + offset - time.monotonic())

        for step in plan.during:
            if not at(step.at):
                injected.append(f"+{step.at:.2f}s {step.name}: skipped, the node had died")
                continue
            injected.append(self._inject(step, f"+{step.at:.2f}s"))
        if plan.death == "kill":
            assert plan.kill_after is not None
            at(plan.kill_after)
            node.kill()
        elif plan.death == "held":
            assert plan.kill_after is not None
            caught = self._wait_for_hold(node, _HOLD_WAIT)
            if caught is None:
                injected.append(f"no placement held within {_HOLD_WAIT:.0f}s of ready")
            else:
                injected.append(f"+{caught:.2f}s the venue holds a placement")
                node.pause(plan.kill_after)
            node.kill()
            held_at_kill = self.venue.placements_held()
        else:
            at(_CRASH_POINT_CAP)
            if node.process.poll() is None:
                # A node held back by its risk limits, a ban or orders waiting out
                # their acceptance window may send too little to reach the point:
                # it dies by SIGKILL instead, which is a planned death too.
                injected.append(f"crash point not reached in {_CRASH_POINT_CAP:.0f}s: killed")
                node.kill()
                not_reached = True
        code = node.finish(60)
        seconds = time.monotonic() - node.started
        in_flight: tuple[str, ...] = ()
        if plan.death == "held":
            in_flight = self._in_flight()
        problems = journal_problems(self.journal) if self.journal.exists() else []
        self.journal_checks[f"incarnation {plan.number}"] = problems
        record = IncarnationRecord(
            plan=plan,
            returncode=code,
            seconds=seconds,
            injected=tuple(injected),
            log=node.log,
            journal_problems=tuple(problems),
            in_flight=in_flight,
            held_at_kill=held_at_kill,
        )
        planned = plan.death if plan.crash_at is not None else "kill"
        expected = record.expected_returncodes
        if not_reached:
            planned = f"{planned}, not reached: kill"
            expected = (_KILLED,)
        self.deaths.append(Death(f"incarnation {plan.number}", planned, code, expected, node.log))
        sound = "journal sound" if not problems else f"JOURNAL NOT SOUND: {problems[0]}"
        flight = ""
        if plan.death == "held":
            flight = (
                f"; placements held at the kill: {', '.join(held_at_kill) or 'none'}; "
                f"{len(in_flight)} pending orders unknown to the venue"
            )
        self.echo(f"    -> exit {code} after {seconds:.1f}s; {sound}{flight}")
        return record

    def _wait_for_hold(self, node: _Node, timeout: float) -> float | None:
        """Seconds from now until the venue holds a placement; None if the node died or timed out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.venue.placements_held():
                return time.monotonic() - started
            if not node.pause(0.02):
                return None
        return None

    def _in_flight(self) -> tuple[str, ...]:
        """Orders the dead node journaled as pending that the venue does not have (yet)."""
        if not self.journal.exists():
            return ()
        try:
            state = replay_journal(self.journal)
        except Exception as error:  # noqa: BLE001 - journal_sound reports it
            self.echo(f"    (could not replay the journal: {error})")
            return ()
        books = self.venue.books()
        known = {order.client_order_id for order in books.orders}
        return tuple(
            sorted(
                view.client_order_id
                for view in state.open_orders()
                if view.status in _PENDING and view.client_order_id not in known
            )
        )

    def settle(self, number: int, duration: float) -> int | None:
        settings = self.venue.draw_settings(None)
        label = f"settle-{number}"
        config = self._write_config(
            label,
            node_config(
                self.venue,
                settings,
                _breaker_timeout(None, settings),
                self.journal,
                trading=False,
            ),
        )
        node = _Node(config, label, self.venue.node_environment(), duration=duration)
        code = node.finish(duration + _READY_TIMEOUT)
        problems = journal_problems(self.journal) if self.journal.exists() else []
        self.journal_checks[f"settle {number}"] = problems
        self.deaths.append(Death(f"settle {number}", "clean", code, (0,), node.log))
        self.echo(f"  settle {number}: {duration:.0f}s, no strategy -> exit {code}")
        return code


def run_campaign(
    venue: CampaignVenue,
    *,
    seed: int,
    workdir: Path,
    incarnations: int = 8,
    scenario: str = "random",
    echo: Callable[[str], None] = print,
) -> CampaignSummary:
    """Run one seed's campaign against ``venue`` in ``workdir``; print as it goes; the verdicts.

    The seed is printed first; then each incarnation's plan and fate, the
    settle runs, and one ``PASS``/``FAIL`` line per invariant. Details of
    failures are in ``workdir/<invariant>.json``, the whole summary in
    ``workdir/summary.json``.
    """
    started = time.monotonic()
    echo(
        f"tradenode drill: seed {seed} (venue {venue.name}, scenario {scenario}, workdir {workdir})"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    plans = plan_campaign(venue, scenario, seed, incarnations)
    campaign = _Campaign(venue, seed=seed, scenario=scenario, workdir=workdir, echo=echo)
    records: list[IncarnationRecord] = []
    settle_codes: list[int | None] = []
    venue.start(workdir, seed)
    try:
        for plan in plans:
            records.append(campaign.incarnation(plan))
        windows = [plan.settings.acceptance_window for plan in plans]
        windows.append(venue.draw_settings(None).acceptance_window)
        # Long enough for a Retry-After (at most the venue's 10 s order window)
        # and for the acceptance window to pass before a missing order is re-sent.
        duration = max(12.0, max(windows) + 7.0)
        venue.clear_faults()
        settle_codes.append(campaign.settle(1, duration))
        venue.freeze_prices()
        settle_codes.append(campaign.settle(2, duration))
        books = venue.books()
    finally:
        venue.stop()
    (workdir / "venue-books.json").write_text(
        json.dumps(books.to_dict(), indent=1), encoding="utf-8"
    )
    results = _verdicts(campaign, records, books, venue, workdir)
    summary = CampaignSummary(
        venue=venue.name,
        seed=seed,
        scenario=scenario,
        workdir=workdir,
        incarnations=tuple(records),
        invariants=tuple(results),
        seconds=time.monotonic() - started,
        settle_returncodes=tuple(settle_codes),
    )
    for result in results:
        echo(result.line())
    verdict = "PASS" if summary.passed else f"FAIL ({', '.join(summary.failed)})"
    echo(f"tradenode drill: seed {seed}: {verdict} in {summary.seconds:.0f}s")
    (workdir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    return summary


def _verdicts(
    campaign: _Campaign,
    records: Sequence[IncarnationRecord],
    books: VenueBooks,
    venue: CampaignVenue,
    workdir: Path,
) -> list[InvariantResult]:
    results = [
        check_deaths(campaign.deaths, workdir),
        check_journal_sound(campaign.journal_checks, workdir),
    ]
    try:
        state = replay_journal(campaign.journal)
    except Exception as error:  # noqa: BLE001 - every check that needs the journal fails with it
        reason = f"the journal cannot be replayed: {type(error).__name__}: {error}"
        results += [
            InvariantResult(name, False, reason)
            for name in INVARIANTS
            if name not in ("deaths_as_planned", "journal_sound", "no_secret_in_files")
        ]
    else:
        results += [
            check_fills_exactly_once(state, books, venue.name, workdir),
            check_one_order_per_client_id(state, books, workdir),
            check_logical_orders_not_overfilled(state, books, workdir),
            check_positions_match_balances(
                state,
                books,
                venue.name,
                workdir,
                symbols=venue.symbols,
                initial=venue.initial_balances,
            ),
            check_open_orders_agree(state, books, workdir),
            check_held_placements(
                [
                    (f"incarnation {record.plan.number}", record.held_at_kill)
                    for record in records
                    if record.plan.death == "held"
                ],
                state,
                books,
                workdir,
                directed=campaign.scenario == "held-placement",
            ),
        ]
    results.append(check_no_secret_in_files(venue.secrets, workdir))
    return results
