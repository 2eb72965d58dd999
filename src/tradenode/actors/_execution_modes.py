"""Execution modes: which mode an order runs under, whether it needs approval,
and what a RESEARCH node's desk (``tradenode._research``) answers.

Pure but for ``DirectLane``: the router actor asks these functions. The
research desk runs the matching simulator, so the node builds it and hands it
to the router as a ``ResearchBook`` (the OMS's layer imports no simulator).
``DirectLane`` lets a strategy bridge tell the risk guard a FULL_AUTO order
that names its venue itself, under the lock the router changes modes under.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from .._config import AUTO_VENUE, ApprovalConfig, ExecutionMode
from ..messages._execution import SubmitParentOrder
from ..messages._messages import (
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    Quote,
    SubmitOrder,
)
from ..supervision import Address

__all__ = [
    "DirectLane",
    "ModeSource",
    "ResearchBook",
    "ResearchEvent",
    "ResearchRecord",
    "ThroughRouter",
    "approval_needed",
    "mode_for",
]


def mode_for(
    strategy_id: str, node_mode: ExecutionMode, overrides: Mapping[str, ExecutionMode]
) -> ExecutionMode:
    """The mode an order of ``strategy_id`` runs under. EMERGENCY is node-wide and
    wins over any strategy's override: a kill switch spares no strategy."""
    if node_mode is ExecutionMode.EMERGENCY:
        return node_mode
    return overrides.get(strategy_id, node_mode)


def approval_needed(
    mode: ExecutionMode,
    order: SubmitOrder | SubmitParentOrder,
    config: ApprovalConfig,
    last_price: Decimal | None,
) -> str | None:
    """Why ``order`` must wait for a person's approval under ``mode``, or None.

    SEMI_AUTO holds an order above either threshold. Its notional is its own
    price times its quantity, or the last price for a market order (and for a
    parent order, whose total is what is judged); one with no price known yet
    while a notional threshold is set waits, since nobody can say it is below it."""
    if mode is ExecutionMode.MANUAL:
        return "MANUAL: every order waits for approval"
    if mode is not ExecutionMode.SEMI_AUTO:
        return None
    if config.quantity_threshold is not None and order.quantity > config.quantity_threshold:
        return (
            f"SEMI_AUTO: quantity {order.quantity} above the threshold {config.quantity_threshold}"
        )
    if config.notional_threshold is not None:
        notional = order.notional if isinstance(order, SubmitOrder) else None
        if notional is None and last_price is not None:
            notional = order.quantity * last_price
        if notional is None:
            return (
                "SEMI_AUTO: notional unknown (no price yet) and a notional threshold "
                f"of {config.notional_threshold} is set"
            )
        if notional > config.notional_threshold:
            return (
                f"SEMI_AUTO: notional {notional.normalize():f} above the threshold "
                f"{config.notional_threshold}"
            )
    return None


@dataclass(frozen=True, slots=True)
class ResearchEvent:
    """What a RESEARCH node tells a strategy about one of its simulated orders: the
    simulation's own report (accepted, filled, canceled, expired, rejected),
    wrapped so it is never taken for a venue's and never moves a real position."""

    report: OrderAccepted | OrderFilled | OrderCanceled | OrderExpired | OrderRejected


@dataclass
class ResearchRecord:
    """One order a RESEARCH node recorded instead of sending, and how its simulation went."""

    order: SubmitOrder
    recorded_ns: int
    events: list[ResearchEvent] = field(default_factory=list)

    @property
    def filled(self) -> Decimal:
        return sum(
            (e.report.last_quantity for e in self.events if isinstance(e.report, OrderFilled)),
            Decimal(0),
        )


class ResearchBook(Protocol):
    """What the router needs of a research desk."""

    records: dict[str, ResearchRecord]

    def on_quote(self, quote: Quote, now_ns: int) -> list[ResearchEvent]: ...

    def submit(self, order: SubmitOrder, now_ns: int) -> list[ResearchEvent]: ...

    def cancel(self, client_order_id: str, now_ns: int) -> list[ResearchEvent]: ...

    def positions(self) -> dict[tuple[str, str], Decimal]: ...


class ModeSource(Protocol):
    """Where the execution modes live (the router's ``RouterStore``); changed only
    under the lane's gate (``RouterActor._set_mode``)."""

    node_mode: ExecutionMode
    overrides: dict[str, ExecutionMode]


class DirectLane:
    """One strategy's way past the router for the orders the router would only forward.

    A FULL_AUTO order that names its venue gets nothing from the router: no
    approval (``approval_needed`` is None), no route, no research; the router
    would tell it to the risk guard as it is. The strategy bridge tells the
    guard itself instead, which saves a message and a thread's wake-up per
    order. ``tell_direct`` does it only when that is indistinguishable from
    going through the router:

    - **The mode.** It reads the strategy's mode and tells the guard under
      ``gate``, the lock the router changes modes under. A mode change the
      router made first is seen (MANUAL holds the order: it goes through the
      router); one made after is one the order preceded, as an order already
      forwarded by the router precedes it.
    - **The order of a strategy's messages.** ``told`` counts what the bridge
      sent through the router (only its thread writes it), ``handled`` what the
      router finished with, whatever it did (only the router's thread writes it,
      after it told the guard anything). Only when they are equal has every
      earlier message of the strategy reached the guard's inbox (or been held,
      denied or dropped by the router, as it would be anyway), so a direct tell
      lands behind them. A message the router never finishes (dead-lettered)
      leaves the lane closed for good: slower, never out of order.

    One per strategy id, kept in the router's store, so a restarted bridge or
    router carries the counts on.
    """

    __slots__ = ("_gate", "_modes", "handled", "strategy_id", "told")

    def __init__(self, strategy_id: str, modes: ModeSource, gate: threading.Lock) -> None:
        self.strategy_id = strategy_id
        self._modes = modes
        self._gate = gate
        self.told = 0
        self.handled = 0

    def tell_direct(self, order: SubmitOrder, risk: Address) -> bool:
        """Tell ``order`` to the risk guard if the router would only forward it;
        False (nothing sent): it must go through the router."""
        if (
            order.venue == AUTO_VENUE
            or order.parent_id is not None
            or order.strategy_id != self.strategy_id
        ):
            return False
        with self._gate:
            if self.handled != self.told:
                return False
            modes = self._modes
            if mode_for(self.strategy_id, modes.node_mode, modes.overrides) is not _FULL_AUTO:
                return False
            risk.tell(order)
        return True


_FULL_AUTO = ExecutionMode.FULL_AUTO


@dataclass(frozen=True, slots=True)
class ThroughRouter:
    """A strategy's message to the router, with the lane that counts it as handled."""

    message: Message
    lane: DirectLane
