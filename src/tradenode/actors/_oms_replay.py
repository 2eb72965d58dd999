"""Getting the order manager's state back from its journal.

:func:`recover` is the one way to do it, for the node, ``journal verify``
and the tools alike: the latest snapshot (:func:`state_from_snapshot`),
then every record after it, replayed. :func:`apply_entry` makes the one ``OmsState`` call an entry records, with
the arguments the OMS passed, so replaying a journal in order through a
fresh state rebuilds the state the OMS had, order for order and fill for
fill. What the state refused the first time it refuses again the same way:
a report it ignores comes back as an ignored ``ApplyResult`` (and is logged
by the state), a ``register`` of an id already in use or a replace that
must not happen raises nothing here and is counted as ignored.

:func:`summarize` condenses a state into JSON-able data for
``journal verify``.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgpack

from tradenode._exceptions import DecodeError, OmsError, OmsSnapshotError
from tradenode.journal import Journal
from tradenode.messages._algos import ParentProfile
from tradenode.messages._enums import DenialCode, OrderStatus
from tradenode.messages._execution import (
    CancelParentOrder,
    ParentCanceled,
    ParentState,
    SubmitParentOrder,
)
from tradenode.messages._messages import Message, PositionSnapshot, SubmitOrder

from ._oms_entries import EntryKind, JournalEntry, decode_entry
from ._oms_state import OmsState

__all__ = [
    "ReplayResult",
    "apply_entry",
    "recover",
    "replay",
    "state_from_snapshot",
    "summarize",
]

_LOGGER = logging.getLogger("tradenode.journal")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """A replayed state and what the journal said besides it."""

    state: OmsState
    counters: Mapping[str, int]
    """Per strategy id, the highest client-order-id counter journaled: restore its ids from it."""
    counts: Mapping[EntryKind, int]
    """Entries replayed, per kind (kinds that never occurred are left out)."""
    ignored: int
    """Entries that changed nothing: reports the state ignored, refused registers or replaces."""
    snapshot_seq: int = 0
    """The snapshot :func:`recover` started from; 0 when it replayed from the first record."""

    @property
    def entries(self) -> int:
        return sum(self.counts.values())


def recover(
    journal: Journal,
    *,
    completed_capacity: int = 10_000,
    lazy: bool = True,
    from_snapshot: bool = True,
    on_undecodable: Callable[[int, DecodeError], None] | None = None,
) -> ReplayResult:
    """The OMS state ``journal`` holds: its latest snapshot, then the records after it.

    Without a snapshot (or with ``from_snapshot=False``) every record is
    replayed into a fresh ``OmsState(completed_capacity=...)``; a snapshot
    brings its own capacity. ``lazy`` is :meth:`OmsState.restore`'s: a
    verifier passes False to know now that every completed order reads
    back. A snapshot that cannot be restored raises :class:`OmsSnapshotError`
    naming it; a record that cannot be decoded raises its ``DecodeError``,
    or is passed to ``on_undecodable`` with its seq and skipped (the state
    is then incomplete, which the caller knows).
    """
    after, state = 0, None
    snapshot = journal.latest_snapshot() if from_snapshot else None
    if snapshot is not None:
        after, payload = snapshot
        try:
            state = state_from_snapshot(payload, lazy=lazy)
        except ValueError as exc:
            raise OmsSnapshotError(f"snapshot {after} cannot be restored: {exc}") from exc
    if state is None:
        state = OmsState(completed_capacity=completed_capacity)
    if on_undecodable is None:
        entries: Iterable[JournalEntry] = (
            decode_entry(payload) for _, payload in journal.replay(after)
        )
    else:
        entries = _decodable(journal.replay(after), on_undecodable)
    return replay(entries, state=state, snapshot_seq=after)


def _decodable(
    records: Iterable[tuple[int, bytes]], on_undecodable: Callable[[int, DecodeError], None]
) -> Iterator[JournalEntry]:
    for seq, payload in records:
        try:
            yield decode_entry(payload)
        except DecodeError as exc:
            on_undecodable(seq, exc)


def state_from_snapshot(payload: bytes, *, lazy: bool = True) -> OmsState:
    """The one place that turns a snapshot's payload into the OMS state it holds.

    Assumes the payload is ``OmsState.snapshot()`` packed with msgpack (as
    ``OmsJournal`` writes it), alone or as the ``"state"`` of a map (which
    may carry more, such as client-order-id counters). Raises ``ValueError``
    (``OmsSnapshotError`` from the restore) if it is neither.
    """
    try:
        plain = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ValueError(f"snapshot payload is not msgpack: {exc}") from exc
    if isinstance(plain, dict) and "version" not in plain and isinstance(plain.get("state"), dict):
        plain = plain["state"]
    return OmsState.restore(plain, lazy=lazy)


def apply_entry(state: OmsState, entry: JournalEntry) -> None:
    """Makes the ``state`` call ``entry`` records; never raises for content the state refuses."""
    _HANDLERS[entry.kind](state, entry)


def replay(
    entries: Iterable[JournalEntry], *, state: OmsState | None = None, snapshot_seq: int = 0
) -> ReplayResult:
    """Applies ``entries`` in order to ``state`` (a fresh default ``OmsState`` when None).

    Pass a state to continue from a snapshot (``OmsState.restore``) or to
    rebuild with the node's own ``completed_capacity`` and ``latency_window``,
    which must match the ones the journal was written with for the
    completed-order LRU and the latency windows to come out the same.
    ``snapshot_seq`` is passed through to the result.
    """
    target = OmsState() if state is None else state
    counts: dict[EntryKind, int] = collections.defaultdict(int)
    counters: dict[str, int] = {}
    ignored = 0
    handlers = _HANDLERS
    counter_kind = EntryKind.COUNTER
    for entry in entries:
        kind = entry.kind
        counts[kind] += 1
        if kind is counter_kind:
            strategy_id = _text(entry.strategy_id, entry, "strategy_id")
            counter = _counter(entry)
            if counter > counters.get(strategy_id, -1):
                counters[strategy_id] = counter
        elif not handlers[kind](target, entry):
            ignored += 1
    return ReplayResult(
        state=target,
        counters=counters,
        counts=dict(counts),
        ignored=ignored,
        snapshot_seq=snapshot_seq,
    )


def summarize(state: OmsState) -> dict[str, Any]:
    """JSON-able totals for ``journal verify``: orders by status, open orders, positions, fills."""
    snapshot = state.snapshot()
    by_status = collections.Counter(order["status"] for order in snapshot["hot"])
    # A completed order is [client_order_id, status, record]: counting needs no decoding.
    by_status.update(status for _, status, _ in snapshot["completed"])
    open_by_venue = collections.Counter(view.venue for view in state.open_orders())
    counts = state.counts()
    metrics = state.metrics()
    return {
        "orders": counts.retained,
        "orders_by_status": {
            status.value: by_status[status.value]
            for status in OrderStatus
            if by_status[status.value]
        },
        "open_orders": counts.open,
        "open_orders_by_venue": dict(sorted(open_by_venue.items())),
        "fills": len(state.fills()),
        "positions": [_position(position) for position in state.positions()],
        "positions_by_strategy": [
            _position(position) for position in state.positions(by_strategy=True)
        ],
        "metrics": {
            name: str(value) if isinstance(value, Decimal) else value
            for name, value in metrics.items()
        },
    }


def _position(position: PositionSnapshot) -> dict[str, Any]:
    return {
        "venue": position.venue,
        "symbol": position.symbol,
        "strategy_id": position.strategy_id,
        "quantity": str(position.quantity),
        "avg_price": str(position.avg_price),
        "realized_pnl": str(position.realized_pnl),
        "unrealized_pnl": str(position.unrealized_pnl),
        "ts_ns": position.ts_ns,
    }


# One handler per kind: makes the call, and says whether the state took it. ----------


def _register(state: OmsState, entry: JournalEntry) -> bool:
    order = _order(entry)
    try:
        state.track(order, entry.ts_ns)
    except OmsError as exc:
        _LOGGER.info("replay: register %s refused: %s", order.client_order_id, exc)
        return False
    return True


def _denied(state: OmsState, entry: JournalEntry) -> bool:
    code = entry.code
    if not isinstance(code, DenialCode):
        raise _malformed(entry, "code")
    return state.mark_denied(
        _client_order_id(entry), code, _text(entry.reason, entry, "reason"), entry.ts_ns
    ).applied


def _submitted(state: OmsState, entry: JournalEntry) -> bool:
    return state.submitted(_client_order_id(entry), entry.ts_ns)


def _pending_cancel(state: OmsState, entry: JournalEntry) -> bool:
    return state.mark_pending_cancel(_client_order_id(entry), entry.ts_ns).applied


def _pending_replace(state: OmsState, entry: JournalEntry) -> bool:
    return state.mark_pending_replace(_client_order_id(entry), entry.ts_ns).applied


def _link_replacement(state: OmsState, entry: JournalEntry) -> bool:
    old = _client_order_id(entry)
    try:
        state.link_replacement(old, _order(entry), entry.ts_ns)
    except OmsError as exc:
        _LOGGER.info("replay: replace of %s refused: %s", old, exc)
        return False
    return True


def _report(state: OmsState, entry: JournalEntry) -> bool:
    message = entry.message
    if not isinstance(message, Message):
        raise _malformed(entry, "message")
    return state.apply(message, entry.ts_ns).applied


def _mark(state: OmsState, entry: JournalEntry) -> bool:
    price = entry.price
    if not isinstance(price, Decimal):
        raise _malformed(entry, "price")
    state.mark(_text(entry.venue, entry, "venue"), _text(entry.symbol, entry, "symbol"), price)
    return True


def _balance_baseline(state: OmsState, entry: JournalEntry) -> bool:
    quantity = entry.quantity
    if not isinstance(quantity, Decimal):
        raise _malformed(entry, "quantity")
    state.set_balance_baseline(
        _text(entry.venue, entry, "venue"), _text(entry.asset, entry, "asset"), quantity
    )
    return True


def _venue_cursor(state: OmsState, entry: JournalEntry) -> bool:
    state.set_venue_cursor(
        _text(entry.venue, entry, "venue"),
        _text(entry.scope, entry, "scope"),
        _text(entry.cursor, entry, "cursor"),
    )
    return True


def _acceptance_window(state: OmsState, entry: JournalEntry) -> bool:
    seconds = entry.seconds
    if not isinstance(seconds, Decimal):
        raise _malformed(entry, "seconds")
    state.set_acceptance_window(_text(entry.venue, entry, "venue"), seconds)
    return True


def _arrival(state: OmsState, entry: JournalEntry) -> bool:
    price = entry.price
    if not isinstance(price, Decimal):
        raise _malformed(entry, "price")
    state.set_arrival(_client_order_id(entry), price)
    return True


def _parent(state: OmsState, entry: JournalEntry) -> bool:
    message = entry.message
    try:
        if isinstance(message, SubmitParentOrder):
            state.register_parent(message, entry.ts_ns)
        elif isinstance(message, CancelParentOrder):
            state.move_parent(
                message.parent_id,
                ParentState.PENDING_CANCEL,
                message.reason,
                entry.ts_ns,
                ending=ParentState.EXPIRED if message.expire else ParentState.CANCELED,
            )
        elif isinstance(message, ParentCanceled):
            state.move_parent(message.parent_id, message.state, message.reason, entry.ts_ns)
        elif isinstance(message, ParentProfile):
            state.parents.learn(message)
        else:
            raise _malformed(entry, "message")
    except OmsError as exc:
        _LOGGER.info("replay: parent entry refused: %s", exc)
        return False
    return True


def _audit(state: OmsState, entry: JournalEntry) -> bool:
    # An operator's action, for the record: the state calls it caused are journaled apart.
    return True


def _counter_entry(state: OmsState, entry: JournalEntry) -> bool:
    # The counters live outside the state; replay() collects them.
    _counter(entry)
    return True


_HANDLERS: Final[Mapping[EntryKind, Callable[[OmsState, JournalEntry], bool]]] = {
    EntryKind.REGISTER: _register,
    EntryKind.DENIED: _denied,
    EntryKind.SUBMITTED: _submitted,
    EntryKind.PENDING_CANCEL: _pending_cancel,
    EntryKind.PENDING_REPLACE: _pending_replace,
    EntryKind.LINK_REPLACEMENT: _link_replacement,
    EntryKind.REPORT: _report,
    EntryKind.MARK: _mark,
    EntryKind.BALANCE_BASELINE: _balance_baseline,
    EntryKind.COUNTER: _counter_entry,
    EntryKind.VENUE_CURSOR: _venue_cursor,
    EntryKind.ACCEPTANCE_WINDOW: _acceptance_window,
    EntryKind.ARRIVAL: _arrival,
    EntryKind.PARENT: _parent,
    EntryKind.AUDIT: _audit,
}


# Accessors: JournalEntry guarantees these fields per kind; these only narrow types. --


def _order(entry: JournalEntry) -> SubmitOrder:
    message = entry.message
    if not isinstance(message, SubmitOrder):
        raise _malformed(entry, "message")
    return message


def _client_order_id(entry: JournalEntry) -> str:
    return _text(entry.client_order_id, entry, "client_order_id")


def _text(value: str | None, entry: JournalEntry, name: str) -> str:
    if not isinstance(value, str):
        raise _malformed(entry, name)
    return value


def _counter(entry: JournalEntry) -> int:
    counter = entry.counter
    if not isinstance(counter, int):
        raise _malformed(entry, "counter")
    return counter


def _malformed(entry: JournalEntry, name: str) -> TypeError:
    # Only reachable by bypassing JournalEntry's own checks (object.__setattr__).
    return TypeError(f"journal entry ({entry.kind.value}) has no valid {name}")
