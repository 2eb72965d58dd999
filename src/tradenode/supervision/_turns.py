"""Which cells' turns the current thread holds: a cell's own, and those lent to it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["turns"]


class _Turns(threading.local):
    cells: list[Cell] | None = None
    """On a cell's thread: its cell, then every cell whose turn it was lent, innermost
    last. None on every other thread (a trio loop's, a timer's, a test's)."""


turns = _Turns()
