"""Drives the paper venue's price process on the node's clock."""

from __future__ import annotations

from typing import Any

from ...supervision import Actor
from ._venue import PaperVenue

__all__ = ["PaperMarket"]


class _Tick:
    __slots__ = ()


class PaperMarket(Actor):
    """One tick of every symbol per ``interval`` seconds: prices move, resting orders fill."""

    def __init__(self, venue: PaperVenue, interval: float) -> None:
        self.venue = venue
        self.interval = interval

    def on_start(self) -> None:
        self.context.schedule_repeating(self.interval, _Tick())

    def receive(self, message: Any) -> Any:
        if isinstance(message, _Tick):
            self.venue.step()
        return None
