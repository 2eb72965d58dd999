"""A node's recovery: its OMS state from the journal, and what the last run left in flight.

On start (:func:`recover_node`) the journal is opened (every checksum
checked) and the OMS state rebuilt with ``recover`` (the latest snapshot,
then the records after it), the same call ``journal verify`` and the tools
make. When a venue is attached (:func:`resolve_recovered`) the orders the
journal says were on their way to it are resolved with the venue before
anything is sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ._config import NodeConfig
from .actors._breaker import ResolveSubmit
from .actors._contract import AcceptanceWindow
from .actors._control import RecordAcceptanceWindow
from .actors._directory import Directory
from .actors._oms_replay import recover
from .actors._oms_state import OmsState
from .journal import FsyncPolicy, Journal
from .messages._enums import OrderStatus
from .messages._messages import CancelOrder
from .supervision import Address, Clock
from .supervision._collector import collector_paused

__all__ = ["Recovered", "RecoveryReport", "recover_node", "resolve_recovered"]

logger = logging.getLogger("tradenode.node")


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What the journal gave back when the node started."""

    snapshot_seq: int
    replayed: int
    last_seq: int
    open_orders: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Recovered:
    """The OMS state a node starts from, and the journal it goes on writing (None: none)."""

    state: OmsState
    journal: Journal | None = None
    report: RecoveryReport | None = None


def recover_node(
    config: NodeConfig, clock: Clock, *, thread_setup: Callable[[], object] | None = None
) -> Recovered:
    """Open the journal (if configured) and rebuild the OMS from snapshot + tail;
    ``thread_setup`` runs first on each thread the journal starts."""
    capacity = config.oms.completed_capacity
    section = config.journal
    if section is None:
        return Recovered(OmsState(completed_capacity=capacity))
    started = time.perf_counter()
    # What a restart reads and rebuilds is tens of thousands of live, acyclic
    # containers made in one go: collections meanwhile would walk them all and free
    # nothing (~100 ms of a restart from 100,000 records).
    with collector_paused():
        journal = Journal.open(
            Path(section.path),
            fsync=FsyncPolicy.parse(section.fsync),
            segment_bytes=section.segment_mb * 2**20,
            clock=clock,
            thread_setup=thread_setup,
        )
        result = recover(journal, completed_capacity=capacity)
        open_orders = len(result.state.open_orders())  # a view of each, all at once
    report = RecoveryReport(
        snapshot_seq=result.snapshot_seq,
        replayed=result.entries,
        last_seq=journal.last_seq,
        open_orders=open_orders,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "journal %s: recovered %d records after snapshot %d in %.3fs (%d open orders)",
        section.path,
        report.replayed,
        report.snapshot_seq,
        report.seconds,
        report.open_orders,
    )
    return Recovered(result.state, journal, report)


def resolve_recovered(
    directory: Directory,
    state: OmsState,
    venue: str,
    *,
    acceptance: AcceptanceWindow | None,
    oms: Address,
    clock: Clock,
) -> None:
    """Orders the journal says were on their way to ``venue`` when the last run
    ended: ask the venue before anything is sent again, and send again only
    once the venue can no longer accept what the last process sent. That
    process died before this one attached the venue, so its requests left
    by now; they may be accepted as long as the window *it* journaled
    says, which may be longer than ours."""
    entry = directory.venue(venue)
    if entry is None:
        return
    unknown = [
        view
        for view in state.open_orders(venue=venue)
        if view.status in (OrderStatus.INITIALIZED, OrderStatus.SUBMITTED)
    ]
    journaled = state.acceptance_window(venue)
    if acceptance is not None:
        current = Decimal(str(acceptance.seconds + acceptance.margin))
        if unknown and journaled is not None:
            current = max(current, journaled)
        oms.tell(RecordAcceptanceWindow(venue, current))
    past = None if journaled is None else AcceptanceWindow(float(journaled))
    now = clock.monotonic()
    for view in unknown:
        entry.breaker.tell(
            ResolveSubmit(
                view.order,
                sent_by=now,
                window=past,
                # A replacement was sent as half of a cancel/replace; its
                # predecessor may have filled since: never a fresh order.
                resend=view.replacement_of is None,
            )
        )
    for view in state.open_orders(venue=venue):
        if view.status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
            entry.breaker.tell(
                CancelOrder(client_order_id=view.client_order_id, venue=venue, symbol=view.symbol)
            )
