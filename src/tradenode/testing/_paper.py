"""Ready-made paper venues for tests and rehearsals (the simulator's defaults)."""

from __future__ import annotations

from ..sim._defaults import default_instruments, paper_sim_config

__all__ = ["default_instruments", "paper_sim_config"]
