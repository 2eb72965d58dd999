"""Moved: ``journal show / export / verify`` are the OMS's (``tradenode.actors._oms_inspect``).

Kept for code that still imports them from here (``tradenode.testing.campaign``);
``tests/test_import_graph.py`` names this module as the journal's only other
import of the OMS.
"""

from ..actors._oms_inspect import state_from_snapshot, verify

__all__ = ["state_from_snapshot", "verify"]
