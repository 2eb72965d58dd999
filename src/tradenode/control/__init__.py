"""The operator's plane of control: the control API a node serves and ``tradenode ctl``.

``ControlConfig`` is the config's ``control:`` section; ``ControlServer`` is what
``Node.start`` runs when it is enabled (``Node.control_url`` is its URL);
``AuditRecord`` is one action as ``GET /v1/audit`` lists it (the journal holds
the same as ``EntryKind.AUDIT`` entries); ``ControlClient`` and
``resolve_control_url`` are what ``tradenode ctl`` calls the API with.

``tradenode._config`` imports this package for ``ControlConfig``, so the server
(starlette, hypercorn, the node's actors) is imported on first use only: reading
a config loads no web framework and no import cycle through the config.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._config import ControlConfig

if TYPE_CHECKING:
    from ._app import AuditRecord
    from ._ctl import ControlClient, resolve_control_url
    from ._service import ControlServer

__all__ = [
    "AuditRecord",
    "ControlClient",
    "ControlConfig",
    "ControlServer",
    "resolve_control_url",
]

_LAZY = {
    "AuditRecord": "._app",
    "ControlClient": "._ctl",
    "ControlServer": "._service",
    "resolve_control_url": "._ctl",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
