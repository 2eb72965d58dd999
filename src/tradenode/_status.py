"""What a node reports about itself: the status view, the books, venues' connections.

Read from supervision events and by asking the actors; a status view
never takes the node down (an actor that does not answer is reported, not
raised).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .actors._breaker import GetBreakerStats
from .actors._control import GetMetrics, GetOpenOrders, GetRiskStatus
from .actors._execution_quality import quality_report
from .actors._oms_parents import parent_summary
from .supervision import SupervisionEvent, SupervisionEventKind, TreeNode

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["VenueConnections", "books", "node_status", "render_tree", "tree_dict"]

logger = logging.getLogger("tradenode.node")


class VenueConnections:
    """Which venues' brokers have connected at least once, from supervision events.

    A broker actor is started (or restarted) only once its ``on_start`` has
    connected and reconciled, so the STARTED/RESTARTED event of
    ``/<node>/brokers/<venue>/broker`` is the proof; a FAILED event carries
    the reason it could not (a refused API key, a venue that is down)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._connected: set[str] = set()
        self._last_failure: dict[str, str] = {}

    def observe(self, event: object) -> None:
        if not isinstance(event, SupervisionEvent) or not event.path.startswith(self._prefix):
            return
        venue, _, child = event.path[len(self._prefix) :].partition("/")
        if child != "broker":
            return
        with self._lock:
            if event.kind in (SupervisionEventKind.STARTED, SupervisionEventKind.RESTARTED):
                self._connected.add(venue)
            elif event.kind is SupervisionEventKind.FAILED and event.error is not None:
                self._last_failure[venue] = f"{type(event.error).__name__}: {event.error}"

    def never_connected(self, venues: list[str]) -> dict[str, str]:
        with self._lock:
            return {
                venue: self._last_failure.get(venue, "not connected yet")
                for venue in venues
                if venue not in self._connected
            }

    def summary(self, venues: list[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                venue: {
                    "connected": venue in self._connected,
                    "last_failure": self._last_failure.get(venue),
                }
                for venue in venues
            }


def node_status(
    node: Node,
    connections: VenueConnections,
    venue_status: dict[str, Callable[[], dict[str, Any]]],
) -> dict[str, Any]:
    """``Node.status()``: the tree, the books, the actors' answers, each venue's own status."""
    system = node.system
    tree = system.tree()
    status: dict[str, Any] = {
        "node": node.config.node.name,
        "terminated": system.is_terminated,
        "termination_reason": system.termination_reason,
        "dead_letters": system.dead_letters.count,
        "tree": None if tree is None else tree_dict(tree),
    }
    if system.is_terminated:
        status.update(books(node))
        return status
    try:
        metrics = node.oms.ask(GetMetrics(), timeout=5)
        open_orders = node.oms.ask(GetOpenOrders(), timeout=5)
        risk = node.risk.ask(GetRiskStatus(), timeout=5)
    except Exception as exc:  # noqa: BLE001 - a status view must never take the node down
        status["error"] = f"{type(exc).__name__}: {exc}"
        return status
    status.update(books(node))
    status["metrics"] = {k: str(v) for k, v in metrics.items()}
    status["open_orders"] = len(open_orders)
    status["risk"] = risk
    try:
        status["execution"] = node.router_status()
    except Exception as exc:  # noqa: BLE001 - as above: the view must not fail the node
        status["execution"] = {"error": f"{type(exc).__name__}: {exc}"}
    status["breakers"] = {}
    for entry in node.directory.venues():
        try:
            stats = entry.breaker.ask(GetBreakerStats(), timeout=5)
            status["breakers"][entry.name] = {
                "state": stats.circuit_state,
                "failures": stats.failure_count,
                "dlq": stats.dlq_size,
            }
        except Exception as exc:  # noqa: BLE001
            status["breakers"][entry.name] = {"state": f"unavailable ({type(exc).__name__})"}
    status["venues"] = connections.summary(node.config_venue_names())
    status["connections"] = {
        name: _venue_status(name, describe) for name, describe in venue_status.items()
    }
    return status


def books(node: Node) -> dict[str, Any]:
    """Orders, fills, positions and PnL from the node's OMS books (no actor asked)."""
    state = node.oms_store.state
    positions = [
        {
            "venue": p.venue,
            "symbol": p.symbol,
            "quantity": str(p.quantity),
            "avg_price": str(p.avg_price),
            "realized_pnl": str(p.realized_pnl),
            "unrealized_pnl": str(p.unrealized_pnl),
        }
        for p in state.positions()
    ]
    metrics = state.metrics()
    return {
        "total_orders": metrics.get("total_orders", 0),
        "fills": len(state.fills()),
        "rejections": node.oms_store.rejections,
        "denials": node.oms_store.denials,
        "positions": positions,
        "realized_pnl": str(sum((Decimal(p["realized_pnl"]) for p in positions), Decimal(0))),
        "restarts": node.system.events.restart_counts(),
        # Totals over every retained order; the figures of the latest 100 orders.
        "execution_quality": quality_report(
            state,
            limit=100,
            # Live, the OMS's latest totals (its thread keeps them); once stopped, all anew.
            totals=None if node.system.is_terminated else node.oms_store.quality.latest,
        ),
        # Positions per instrument summed across the venues that list it.
        "exposure": node.oms_store.exposure().to_dict(),
        # Parent orders: each one still working, and how many ended how.
        "parents": parent_summary(state),
    }


def _venue_status(name: str, describe: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return describe()
    except Exception as exc:
        logger.exception("venue %s: status failed", name)
        return {"error": type(exc).__name__}


def tree_dict(node: TreeNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "path": node.path,
        "state": node.state,
        "generation": node.generation,
        "restarts": node.restarts,
        "children": [tree_dict(child) for child in node.children],
    }


def render_tree(node: TreeNode, indent: str = "") -> list[str]:
    """The supervision tree as text lines with state and restart counts."""
    lines = [f"{indent}{node.name} [{node.state}, restarts={node.restarts}]"]
    for child in node.children:
        lines.extend(render_tree(child, indent + "  "))
    return lines
