"""The seed API, for users coming from it: thin wrappers over a node's messages.

``ExecutionEngine``, ``KillSwitch`` and the query methods send the same
messages the node's own actors exchange; they are not a second engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._config import AUTO_VENUE, ExecutionMode, NodeConfig, load_config
from ._node import Node
from .actors._breaker import VenueFailureStats
from .actors._control import GetFills, GetMetrics, GetOpenOrders, GetPositions
from .actors._execution_quality import GetExecutionQuality
from .actors._oms import KillSwitchReport
from .actors._oms_parents import ParentView
from .actors._strategy import Strategy
from .messages._enums import Side
from .messages._execution import AlgoParams
from .messages._messages import ExecutionDecision, OrderFilled, PositionSnapshot, SubmitOrder
from .supervision import Clock

__all__ = ["ExecutionEngine", "KillSwitch"]

FACADE_STRATEGY = "facade"


@dataclass(frozen=True, slots=True)
class _Decide:
    decision: ExecutionDecision


class _FacadeStrategy(Strategy):
    """Turns decisions handed to the engine into orders, like any strategy would."""

    def __init__(self, venue: str) -> None:
        self.strategy_id = FACADE_STRATEGY
        self.venue = venue

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Decide):
            return self.ctx.execute_decision(message.decision)
        return None


class ExecutionEngine:
    """connect / execute_decision / run_live_trading / get_status / stop / disconnect."""

    def __init__(
        self, config: NodeConfig | str | Path | None = None, *, clock: Clock | None = None
    ) -> None:
        if config is None or isinstance(config, NodeConfig):
            self.config = config if config is not None else load_config()
        else:
            self.config = load_config(config)
        self._clock = clock
        self.node: Node | None = None

    @property
    def connected(self) -> bool:
        return self.node is not None and not self.node.system.is_terminated

    def connect(self) -> None:
        if self.connected:
            return
        self.node = Node(self.config, clock=self._clock)
        self.node.start()
        venue = self.config.venues[0].name if self.config.venues else "paper"
        self.node.add_strategy(FACADE_STRATEGY, lambda: _FacadeStrategy(venue))

    def disconnect(self) -> None:
        if self.node is not None:
            self.node.stop()

    def _node(self) -> Node:
        if self.node is None or self.node.system.is_terminated:
            raise RuntimeError("ExecutionEngine is not connected; call connect() first")
        return self.node

    def execute_decision(self, decision: ExecutionDecision, timeout: float = 10.0) -> str | None:
        """Send a decision; returns the client order id of the order it produced, if any.

        A decision without a venue for an instrument of ``instruments:`` is routed
        (venue ``auto``); any other goes to the engine's first venue."""
        node = self._node()
        if decision.venue is None and decision.symbol in node.directory.instruments:
            decision = replace(decision, venue=AUTO_VENUE)
        address = node.system.lookup(node.directory.path("core", "strategies", FACADE_STRATEGY))
        assert address is not None
        result = address.ask(_Decide(decision), timeout=timeout)
        return None if result is None else str(result)

    def submit_parent(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        algorithm: AlgoParams,
        *,
        venue: str | None = None,
        parent_id: str | None = None,
    ) -> str:
        """Work ``quantity`` with an execution algorithm (``TwapParams``, ...); returns the
        parent id, to follow with ``get_parent`` (see ``Node.submit_parent``)."""
        node = self._node()
        if venue is None and self.config.venues:
            venue = self.config.venues[0].name
        return node.submit_parent(
            symbol,
            side,
            quantity,
            algorithm,
            venue=venue,
            parent_id=parent_id,
            strategy_id=FACADE_STRATEGY,
        )

    def cancel_parent(self, parent_id: str) -> None:
        self._node().cancel_parent(parent_id)

    def get_parent(self, parent_id: str) -> ParentView | None:
        """The parent's state, target, filled quantity, average price and children."""
        return self._node().parent(parent_id)

    def run_live_trading(
        self, strategy_id: str, factory: Callable[[], Strategy], duration: float | None = None
    ) -> dict[str, Any]:
        """Run a strategy (for ``duration`` seconds, or until ``stop``) and return the status."""
        node = self._node()
        node.add_strategy(strategy_id, factory)
        if duration is not None:
            node.system.wait_terminated(duration)
            node.remove_strategy(strategy_id)
        return self.get_status()

    def stop(self) -> None:
        """Stop trading: remove every strategy; the node keeps tracking open orders."""
        node = self._node()
        for config in self.config.strategies:
            node.remove_strategy(config.id)
        node.remove_strategy(FACADE_STRATEGY)

    def get_status(self) -> dict[str, Any]:
        return self._node().status() if self.connected else {"connected": False}

    def get_position(self, symbol: str, venue: str | None = None) -> PositionSnapshot | None:
        venue = venue or (self.config.venues[0].name if self.config.venues else "paper")
        for snapshot in self._node().oms.ask(GetPositions(venue=venue)):
            if snapshot.symbol == symbol:
                assert isinstance(snapshot, PositionSnapshot)
                return snapshot
        return None

    def get_fills(self, strategy_id: str | None = None) -> tuple[OrderFilled, ...]:
        return tuple(self._node().oms.ask(GetFills(strategy_id=strategy_id)))

    def get_open_orders(self, venue: str | None = None) -> tuple[SubmitOrder, ...]:
        return tuple(self._node().oms.ask(GetOpenOrders(venue=venue)))

    def get_performance_metrics(self) -> dict[str, Any]:
        """The OMS's metrics (``execution_*`` totals among them) and, under
        ``execution_quality``, every retained order's figures (see
        ``tradenode.actors._execution_quality`` for the definitions)."""
        oms = self._node().oms
        metrics = dict(oms.ask(GetMetrics()))
        metrics["execution_quality"] = oms.ask(GetExecutionQuality())
        return metrics

    def get_failure_stats(self, venue: str | None = None) -> VenueFailureStats:
        venue = venue or (self.config.venues[0].name if self.config.venues else "paper")
        return self._node().failure_stats(venue)

    def get_pending_approvals(self) -> tuple[dict[str, str], ...]:
        """Orders waiting for approval (SEMI_AUTO, MANUAL), as the CLI shows them."""
        return tuple(approval.describe() for approval in self._node().pending_approvals())

    def approve(self, approval_id: str, who: str) -> bool:
        return self._node().approve(approval_id, who)

    def reject(self, approval_id: str, who: str, reason: str) -> bool:
        return self._node().reject(approval_id, who, reason)

    def set_execution_mode(
        self, mode: ExecutionMode | str, *, who: str = "operator", timeout: float = 30.0
    ) -> KillSwitchReport | None:
        """FULL_AUTO, SEMI_AUTO, MANUAL, RESEARCH or EMERGENCY (flatten, then halted)."""
        return self._node().set_execution_mode(mode, who=who, timeout=timeout)

    def resume(self, who: str) -> ExecutionMode:
        """End an emergency."""
        return self._node().resume(who)


class KillSwitch:
    """Halt trading, cancel every open order on every venue, optionally flatten."""

    def __init__(self, engine: ExecutionEngine | Node) -> None:
        self._engine = engine
        self.last_report: KillSwitchReport | None = None

    def activate(self, *, flatten: bool = False, timeout: float = 30.0) -> KillSwitchReport:
        node = self._engine if isinstance(self._engine, Node) else self._engine._node()
        self.last_report = node.kill_switch(flatten=flatten, timeout=timeout)
        return self.last_report

    @property
    def is_active(self) -> bool:
        return self.last_report is not None
