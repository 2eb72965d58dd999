"""The campaign's verdicts: the journal replayed as a node would, against the venue's books.

Each check returns an :class:`InvariantResult` whose one-line ``detail``
names the first offending client order ids and execution ids; the full
list, with what the venue and the journal each hold for them, goes to
``<workdir>/<invariant>.json`` when the check fails.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ...actors._oms_inspect import verify
from ...actors._oms_replay import recover
from ...actors._oms_state import OmsState, TrackedOrderView
from ...journal import Journal, JournalError
from ...messages import OrderStatus
from ._venue import VenueBooks

__all__ = [
    "INVARIANTS",
    "Death",
    "InvariantResult",
    "check_deaths",
    "check_fills_exactly_once",
    "check_held_placements",
    "check_journal_sound",
    "check_logical_orders_not_overfilled",
    "check_no_secret_in_files",
    "check_one_order_per_client_id",
    "check_open_orders_agree",
    "check_positions_match_balances",
    "journal_problems",
    "replay_journal",
]

INVARIANTS = (
    "deaths_as_planned",
    "journal_sound",
    "fills_exactly_once",
    "one_order_per_client_id",
    "logical_orders_not_overfilled",
    "positions_match_balances",
    "open_orders_agree",
    "held_placements_once",
    "no_secret_in_files",
)
"""Every invariant the campaign checks, in the order it reports them."""

_SHOWN = 3
"""How many offenders the one-line detail names; the details file has them all."""


@dataclass(frozen=True, slots=True)
class InvariantResult:
    """One invariant's verdict: ``detail`` is one line; ``details_file`` holds everything."""

    name: str
    passed: bool
    detail: str
    details_file: Path | None = None

    def line(self) -> str:
        where = "" if self.details_file is None else f" (details: {self.details_file})"
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "details_file": None if self.details_file is None else str(self.details_file),
        }


@dataclass(frozen=True, slots=True)
class Death:
    """How one node process was meant to end, and how it did."""

    label: str
    """``incarnation 3`` or ``settle 1``."""
    planned: str
    """``kill`` (SIGKILL by the drill), ``<crash point>:<n>`` or ``clean`` (settle runs)."""
    returncode: int | None
    expected: tuple[int, ...]
    log: Path | None = None

    @property
    def as_planned(self) -> bool:
        return self.returncode in self.expected


# ------------------------------------------------------------------ journal


def journal_problems(directory: Path) -> list[str]:
    """What is wrong with the journal in ``directory``, read-only (``[]``: sound)."""
    try:
        result = verify(directory)
    except JournalError as error:
        return [f"{type(error).__name__}: {error}"]
    return list(result.problems)


def replay_journal(directory: Path) -> OmsState:
    """The order manager's state exactly as a node rebuilds it on start: snapshot, then the tail."""
    with Journal.open_read_only(directory) as log:
        return recover(log).state


# ------------------------------------------------------------------ helpers


def _result(
    name: str, workdir: Path, problems: Sequence[Any], ok: str, failed: str
) -> InvariantResult:
    if not problems:
        return InvariantResult(name, True, ok)
    path = workdir / f"{name}.json"
    document = {"invariant": name, "problems": list(problems)}
    path.write_text(json.dumps(document, indent=1, default=_plain), encoding="utf-8")
    return InvariantResult(name, False, failed, path)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, Path | Decimal):
        return str(value)
    return value if isinstance(value, str | int | float | bool | None) else str(value)


def _first(items: Iterable[str]) -> str:
    listed = list(items)
    shown = ", ".join(listed[:_SHOWN])
    return shown + (f" (+{len(listed) - _SHOWN} more)" if len(listed) > _SHOWN else "")


def _ours(state: OmsState, client_order_id: str) -> dict[str, Any] | None:
    view = state.get(client_order_id)
    return None if view is None else _view(view)


def _view(view: TrackedOrderView) -> dict[str, Any]:
    return {
        "client_order_id": view.client_order_id,
        "status": view.status.name,
        "symbol": view.order.symbol,
        "side": view.order.side.name,
        "type": view.order.order_type.name,
        "quantity": str(view.order.quantity),
        "filled_quantity": str(view.filled_quantity),
        "venue_order_id": view.venue_order_id,
        "replacement_of": view.replacement_of,
        "replaced_by": view.replaced_by,
        "reason": view.reason,
        "rejection_code": view.rejection_code,
    }


# ------------------------------------------------------------------- checks


def check_deaths(deaths: Sequence[Death], workdir: Path) -> InvariantResult:
    """Every incarnation died as planned (SIGKILL, or its crash point); settle runs exit 0."""
    wrong = [
        {
            "process": death.label,
            "planned": death.planned,
            "returncode": death.returncode,
            "expected": list(death.expected),
            "log": None if death.log is None else str(death.log),
        }
        for death in deaths
        if not death.as_planned
    ]
    missed = sum(1 for death in deaths if death.planned.endswith("not reached: kill"))
    crash_points = sum(1 for death in deaths if death.planned not in ("kill", "clean")) - missed
    unreached = f"; {missed} crash point(s) not reached in time, killed instead" if missed else ""
    return _result(
        "deaths_as_planned",
        workdir,
        wrong,
        f"{len(deaths)} processes ended as planned ({crash_points} at crash points{unreached})",
        f"{len(wrong)} of {len(deaths)} did not: "
        + _first(f"{w['process']} {w['planned']} -> {w['returncode']}" for w in wrong),
    )


def check_journal_sound(checks: Mapping[str, Sequence[str]], workdir: Path) -> InvariantResult:
    """After every kill (and after settling) the journal reads back sound."""
    bad = {label: list(problems) for label, problems in checks.items() if problems}
    first = next(iter(bad.values()), [""])[0]
    return _result(
        "journal_sound",
        workdir,
        [{"after": label, "problems": problems} for label, problems in bad.items()],
        f"sound after each of {len(checks)} process ends",
        f"not sound after {_first(bad)}: {first}",
    )


def check_fills_exactly_once(
    state: OmsState, books: VenueBooks, venue: str, workdir: Path
) -> InvariantResult:
    """Every venue fill is in the journal exactly once (by execution id), and nothing else is."""
    journaled = [fill for fill in state.fills() if fill.venue == venue]
    counts = Counter(fill.execution_id for fill in journaled)
    at_venue = {fill.execution_id: fill for fill in books.fills}
    twice = sorted(execution for execution, n in counts.items() if n > 1)
    lost = sorted(set(at_venue) - set(counts))
    extra = sorted(set(counts) - set(at_venue))
    problems: list[dict[str, Any]] = []
    for execution in lost:
        fill = at_venue[execution]
        problems.append(
            {
                "problem": "lost: at the venue, not in the journal",
                "execution_id": execution,
                "client_order_id": fill.client_order_id,
                "venue_fill": fill,
                "venue_orders": books.orders_of(fill.client_order_id),
                "journal_order": _ours(state, fill.client_order_id),
            }
        )
    by_id = {fill.execution_id: fill for fill in journaled}
    for execution in extra:
        ours = by_id[execution]
        problems.append(
            {
                "problem": "extra: in the journal, not at the venue",
                "execution_id": execution,
                "client_order_id": ours.client_order_id,
                "journal_fill": ours,
                "journal_order": _ours(state, ours.client_order_id),
            }
        )
    for execution in twice:
        ours = by_id[execution]
        problems.append(
            {
                "problem": f"applied {counts[execution]} times",
                "execution_id": execution,
                "client_order_id": ours.client_order_id,
                "journal_order": _ours(state, ours.client_order_id),
            }
        )
    parts = []
    for label, ids in (("lost", lost), ("extra", extra), ("applied twice", twice)):
        if ids:
            named = _first(
                f"{execution} ({(at_venue.get(execution) or by_id[execution]).client_order_id})"
                for execution in ids
            )
            parts.append(f"{len(ids)} {label}: {named}")
    return _result(
        "fills_exactly_once",
        workdir,
        problems,
        f"{len(at_venue)} venue fills, each journaled once, none extra",
        "; ".join(parts),
    )


def check_one_order_per_client_id(
    state: OmsState, books: VenueBooks, workdir: Path
) -> InvariantResult:
    """One placement per client order id at the venue, and no two venue orders share one."""
    problems: list[dict[str, Any]] = []
    if not books.submissions:
        problems.append({"problem": "the drill never traded: the venue saw no placement"})
    orders_per_id = Counter(order.client_order_id for order in books.orders)
    offenders = sorted(
        {cid for cid, n in books.submissions.items() if n != 1}
        | {cid for cid, n in orders_per_id.items() if n > 1}
    )
    for cid in offenders:
        problems.append(
            {
                "problem": "placed more than once",
                "client_order_id": cid,
                "submissions": books.submissions.get(cid, 0),
                "venue_orders": books.orders_of(cid),
                "venue_fills": [fill for fill in books.fills if fill.client_order_id == cid],
                "journal_order": _ours(state, cid),
            }
        )
    if not books.submissions:
        failed = "the drill never traded (no placement reached the venue)"
    else:
        failed = f"{len(offenders)} client order ids placed more than once: " + _first(
            f"{cid} (submissions {books.submissions.get(cid, 0)}, "
            f"venue orders {orders_per_id.get(cid, 0)})"
            for cid in offenders
        )
    return _result(
        "one_order_per_client_id",
        workdir,
        problems,
        f"{len(books.submissions)} client order ids, one placement and one venue order each",
        failed,
    )


def check_logical_orders_not_overfilled(
    state: OmsState, books: VenueBooks, workdir: Path
) -> InvariantResult:
    """No order the strategy asked for filled more than its quantity across its
    cancel/replace chain (a replacement placed after its predecessor had filled
    doubles the strategy's order even though each client order id is placed once)."""
    seen: set[str] = set()
    problems: list[dict[str, Any]] = []
    for fill in state.fills():
        logical = state.logical_order(fill.client_order_id)
        if logical is None or logical.current_client_order_id in seen:
            continue
        seen.add(logical.current_client_order_id)
        if logical.overfilled_quantity > 0:
            problems.append(
                {
                    "problem": f"filled {logical.filled_quantity} of {logical.requested_quantity}",
                    "client_order_ids": list(logical.client_order_ids),
                    "journal_orders": [_ours(state, cid) for cid in logical.client_order_ids],
                    "venue_orders": [
                        order for cid in logical.client_order_ids for order in books.orders_of(cid)
                    ],
                    "venue_fills": [
                        f for f in books.fills if f.client_order_id in logical.client_order_ids
                    ],
                    "submissions": {
                        cid: books.submissions.get(cid, 0) for cid in logical.client_order_ids
                    },
                }
            )
    return _result(
        "logical_orders_not_overfilled",
        workdir,
        problems,
        f"{len(seen)} filled orders (cancel/replace chains counted once), none overfilled",
        f"{len(problems)} overfilled: "
        + _first(f"{' > '.join(p['client_order_ids'])} {p['problem']}" for p in problems),
    )


def check_positions_match_balances(
    state: OmsState,
    books: VenueBooks,
    venue: str,
    workdir: Path,
    *,
    symbols: Mapping[str, str],
    initial: Mapping[str, Decimal],
) -> InvariantResult:
    """Each symbol's journaled position equals the change of its base asset's balance."""
    problems = []
    for symbol, asset in symbols.items():
        position = state.position(venue, symbol).quantity
        change = books.balances.get(asset, Decimal(0)) - initial.get(asset, Decimal(0))
        if position != change:
            problems.append(
                {
                    "symbol": symbol,
                    "asset": asset,
                    "journal_position": str(position),
                    "venue_balance_change": str(change),
                    "difference": str(change - position),
                }
            )
    return _result(
        "positions_match_balances",
        workdir,
        problems,
        ", ".join(f"{symbol} {state.position(venue, symbol).quantity}" for symbol in symbols),
        _first(
            f"{p['symbol']}: journal {p['journal_position']} vs venue {p['venue_balance_change']}"
            for p in problems
        ),
    )


def check_open_orders_agree(state: OmsState, books: VenueBooks, workdir: Path) -> InvariantResult:
    """Journal open ⊆ venue open; venue open ⊆ journal orders not known filled."""
    open_at_venue = {order.client_order_id for order in books.orders if order.is_open}
    problems: list[dict[str, Any]] = []
    for view in state.open_orders():
        if view.client_order_id not in open_at_venue:
            problems.append(
                {
                    "problem": "open in the journal, not open at the venue",
                    "client_order_id": view.client_order_id,
                    "journal_order": _view(view),
                    "venue_orders": books.orders_of(view.client_order_id),
                }
            )
    for cid in sorted(open_at_venue):
        known = state.get(cid)
        if known is None or known.status == OrderStatus.FILLED:
            problems.append(
                {
                    "problem": "open at the venue, "
                    + ("unknown to the journal" if known is None else "FILLED in the journal"),
                    "client_order_id": cid,
                    "journal_order": None if known is None else _view(known),
                    "venue_orders": books.orders_of(cid),
                }
            )
    return _result(
        "open_orders_agree",
        workdir,
        problems,
        f"{len(open_at_venue)} open at the venue, {len(state.open_orders())} in the journal: "
        "they agree",
        f"{len(problems)} disagree: "
        + _first(f"{p['client_order_id']} ({p['problem']})" for p in problems),
    )


def check_held_placements(
    held: Sequence[tuple[str, Sequence[str]]],
    state: OmsState,
    books: VenueBooks,
    workdir: Path,
    *,
    directed: bool = False,
) -> InvariantResult:
    """A placement the venue was still holding when its node died is placed at most once,
    and the journal agrees with what became of it.

    ``held``: per incarnation killed while the venue held a placement, its
    label and the client order ids the venue was holding right after the
    kill. A held placement may reach the venue too late to be accepted (the
    node signs it to expire by its own deadline): then no venue order may
    exist and the journal must hold the order as terminal and unfilled.
    ``directed``: the hold was shorter than the acceptance window, so the
    placement must end as exactly one venue order; and a hold that caught no
    placement before the kill is a failure (a random plan only notes it).
    """
    name = "held_placements_once"
    if not held:
        return InvariantResult(name, True, "no held placement in this plan")
    problems: list[dict[str, Any]] = []
    checked: list[str] = []
    missed = [label for label, caught in held if not caught]
    if directed:
        problems.extend(
            {"process": label, "problem": "the hold caught no placement before the kill"}
            for label in missed
        )
    placed = 0
    for label, caught in held:
        for cid in caught:
            checked.append(cid)
            orders = books.orders_of(cid)
            submissions = books.submissions.get(cid, 0)
            ours = state.get(cid)
            problem = None
            if len(orders) > 1 or submissions > 1:
                problem = f"{len(orders)} venue orders, {submissions} placements"
            elif not orders and directed:
                problem = "no venue order (held inside the acceptance window, it must be placed)"
            elif not orders and (
                ours is None or not ours.status.is_terminal or ours.filled_quantity
            ):
                shown = "unknown" if ours is None else ours.status.name
                problem = f"no venue order, but the journal has it {shown}"
            placed += len(orders) == 1
            if problem is not None:
                problems.append(
                    {
                        "process": label,
                        "client_order_id": cid,
                        "problem": problem,
                        "submissions": submissions,
                        "venue_orders": orders,
                        "venue_fills": [f for f in books.fills if f.client_order_id == cid],
                        "journal_order": _ours(state, cid),
                    }
                )
    note = f" (the hold caught nothing in {', '.join(missed)})" if missed else ""
    return _result(
        name,
        workdir,
        problems,
        f"{len(checked)} placements held past their node's death"
        + (f" ({_first(checked)})" if checked else "")
        + f": {placed} placed once, {len(checked) - placed} refused by the venue and "
        f"terminal in the journal{note}",
        _first(f"{p.get('client_order_id', p['process'])}: {p['problem']}" for p in problems),
    )


def check_no_secret_in_files(
    secrets: Sequence[str], workdir: Path, exclude: Iterable[Path] = ()
) -> InvariantResult:
    """No file the drill produced (logs, journal, configs, summaries) holds a secret."""
    skipped = {path.resolve() for path in exclude}
    needles = [secret.encode() for secret in secrets if secret]
    scanned = 0
    found = []
    for path in sorted(workdir.rglob("*")):
        if not path.is_file() or path.resolve() in skipped:
            continue
        scanned += 1
        data = path.read_bytes()
        if any(needle in data for needle in needles):
            found.append({"file": str(path)})
    return _result(
        "no_secret_in_files",
        workdir,
        found,
        f"{scanned} files scanned, no secret in any",
        f"a secret is in {_first(f['file'] for f in found)}",
    )
