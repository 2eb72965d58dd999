"""Helpers for tests of tradenode and of users' strategies: clocks, recorders, paper venues."""

from ..supervision import EventRecorder, ManualClock
from ._paper import default_instruments, paper_sim_config

__all__ = ["EventRecorder", "ManualClock", "default_instruments", "paper_sim_config"]
