"""Execution modes: which mode an order runs under, whether it needs approval,
and what a RESEARCH node's desk (``tradenode._research``) answers.

Pure: the router actor asks these functions. The research desk runs the
matching simulator, so the node builds it and hands it to the router as a
``ResearchBook`` (the OMS's layer imports no simulator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from .._config import ApprovalConfig, ExecutionMode
from ..messages._execution import SubmitParentOrder
from ..messages._messages import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    Quote,
    SubmitOrder,
)

__all__ = [
    "ResearchBook",
    "ResearchEvent",
    "ResearchRecord",
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
