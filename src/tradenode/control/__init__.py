"""The operator's plane of control: the control API a node serves and ``tradenode ctl``.

``ControlConfig`` is the config's ``control:`` section; ``ControlServer`` is what
``Node.start`` runs when it is enabled (``Node.control_url`` is its URL).

``tradenode._config`` imports this package for ``ControlConfig``, so the server
(starlette, hypercorn, the node's actors) is imported on first use only: reading
a config loads no web framework and no import cycle through the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import ControlConfig

if TYPE_CHECKING:
    from ._app import AuditRecord, ControlRefused
    from ._service import ControlServer

__all__ = ["AuditRecord", "ControlConfig", "ControlRefused", "ControlServer"]


def __getattr__(name: str) -> Any:
    if name == "ControlServer":
        from ._service import ControlServer  # noqa: PLC0415 - see the module docstring

        return ControlServer
    if name in ("AuditRecord", "ControlRefused"):
        from . import _app  # noqa: PLC0415 - see the module docstring

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
