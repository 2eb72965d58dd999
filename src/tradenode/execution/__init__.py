"""Execution algorithms: parent orders worked as child orders by supervised actors.

Runtime tier: the algorithm framework (``AlgorithmActor``, ``Decision``,
``ChildIntent``, ``register_algorithm``) for algorithm authors, TWAP, VWAP,
Iceberg and POV (each a pure policy and its actor), and
the node's ``execution`` subtree. Strategies and operators submit parents
with ``StrategyContext.submit_parent`` / ``Node.submit_parent`` and the
messages in ``tradenode.messages`` (``SubmitParentOrder``, ``TwapParams``).
"""

from __future__ import annotations

from ._algorithm import (
    ALGORITHMS,
    AlgorithmActor,
    AlgorithmEnv,
    ChildIntent,
    Decision,
    Wake,
    register_algorithm,
)
from ._coordinator import ExecutionCoordinator, ExecutionRuntime, ResumeParents, execution_spec
from ._iceberg import IcebergAlgorithm, IcebergChild, IcebergPolicy
from ._pov import PovAlgorithm, PovChild, PovPolicy
from ._tape import TapeAlgorithm
from ._twap import MAX_FINAL_CHILDREN, TwapAlgorithm, TwapSchedule, twap_decide, twap_schedule
from ._vwap import VolumeProfile, VwapAlgorithm, VwapPolicy

__all__ = [
    "ALGORITHMS",
    "MAX_FINAL_CHILDREN",
    "AlgorithmActor",
    "AlgorithmEnv",
    "ChildIntent",
    "Decision",
    "ExecutionCoordinator",
    "ExecutionRuntime",
    "IcebergAlgorithm",
    "IcebergChild",
    "IcebergPolicy",
    "PovAlgorithm",
    "PovChild",
    "PovPolicy",
    "ResumeParents",
    "TapeAlgorithm",
    "TwapAlgorithm",
    "TwapSchedule",
    "VolumeProfile",
    "VwapAlgorithm",
    "VwapPolicy",
    "Wake",
    "execution_spec",
    "register_algorithm",
    "twap_decide",
    "twap_schedule",
]
