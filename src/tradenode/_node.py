"""The node: one supervision tree built from a config, started and stopped in order."""

from __future__ import annotations

import logging
from typing import Any

from ._config import NodeConfig
from .supervision import (
    ActorSystem,
    Address,
    Clock,
    Intensity,
    Strategy,
    SupervisorSpec,
    TreeNode,
)

__all__ = ["Node"]

logger = logging.getLogger("tradenode.node")


class Node:
    """A supervised tradenode.

    The tree is ``/<name>`` (one_for_one) over ``core`` (the trading
    actors, rest_for_one so a restarted OMS brings back everything that
    depends on it) and ``brokers`` (one_for_one: venues fail independently).
    """

    def __init__(self, config: NodeConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config if config is not None else NodeConfig()
        self.system = ActorSystem(
            clock=clock, seed=self.config.node.seed, name=self.config.node.name
        )
        self._root: Address | None = None

    def tree_spec(self) -> SupervisorSpec:
        section = self.config.node
        intensity = Intensity(section.intensity.max_restarts, section.intensity.within_seconds)
        return SupervisorSpec(
            section.name,
            strategy=Strategy.ONE_FOR_ONE,
            intensity=intensity,
            children=(
                SupervisorSpec("core", strategy=Strategy.REST_FOR_ONE, intensity=intensity),
                SupervisorSpec("brokers", strategy=Strategy.ONE_FOR_ONE, intensity=intensity),
            ),
        )

    def start(self) -> Address:
        self._root = self.system.start(self.tree_spec())
        logger.info("node %s started", self.config.node.name)
        return self._root

    def stop(self, timeout: float | None = None) -> None:
        self.system.shutdown(
            timeout if timeout is not None else self.config.node.shutdown_timeout,
            reason="stop requested",
        )
        logger.info("node %s stopped", self.config.node.name)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the node has terminated (e.g. its root gave up); False on timeout."""
        return self.system.wait_terminated(timeout)

    @property
    def failed(self) -> bool:
        return self.system.failed

    def supervisor(self, name: str) -> Address:
        address = self.system.lookup(f"/{self.config.node.name}/{name}")
        if address is None:
            raise KeyError(f"node has no supervisor {name!r}")
        return address

    def tree(self) -> TreeNode | None:
        return self.system.tree()

    def status(self) -> dict[str, Any]:
        tree = self.tree()
        return {
            "node": self.config.node.name,
            "terminated": self.system.is_terminated,
            "termination_reason": self.system.termination_reason,
            "dead_letters": self.system.dead_letters.count,
            "tree": None if tree is None else _tree_dict(tree),
        }

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tree_dict(node: TreeNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "path": node.path,
        "state": node.state,
        "generation": node.generation,
        "restarts": node.restarts,
        "children": [_tree_dict(child) for child in node.children],
    }


def render_tree(node: TreeNode, indent: str = "") -> list[str]:
    """The supervision tree as text lines with state and restart counts."""
    lines = [f"{indent}{node.name} [{node.state}, restarts={node.restarts}]"]
    for child in node.children:
        lines.extend(render_tree(child, indent + "  "))
    return lines
