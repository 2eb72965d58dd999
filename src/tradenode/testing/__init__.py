"""Helpers for tests of tradenode and of users' strategies: clocks, recorders, fake venues."""

from ..supervision import EventRecorder, ManualClock

__all__ = ["EventRecorder", "ManualClock"]
