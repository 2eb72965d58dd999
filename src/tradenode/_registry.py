"""The venue kinds a node can trade on, looked up by the ``kind`` of a venue config.

The node knows no venue by name. An adapter package declares one
:class:`VenueKind` (its settings model and its factory) and registers it
through the ``tradenode.venues`` entry point group, the way pytest finds
plugins; built-in adapters register the same way, from tradenode's own
``pyproject.toml``. Code can also register a kind directly
(:func:`register_venue_kind`), e.g. a test that defines a venue inline.

Entry points are loaded once, on the first lookup. One that fails to
import (or does not name a ``VenueKind``) is logged and reported by name
(:func:`broken_venue_kinds`, and in the error for an unknown kind); it never
stops the other kinds from loading.

This module imports nothing but the standard library at runtime, so the
config model can consult it without pulling in the trading core.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import VenueSettings
    from .brokers._factory import VenueBuild, VenueContext

__all__ = [
    "ENTRY_POINT_GROUP",
    "VenueKind",
    "VenueKindError",
    "broken_venue_kinds",
    "get_venue_kind",
    "installed_venue_kinds",
    "register_venue_kind",
    "reload_venue_kinds",
    "unregister_venue_kind",
]

logger = logging.getLogger("tradenode.venues")

#: The entry point group third-party adapters register their ``VenueKind`` in.
ENTRY_POINT_GROUP = "tradenode.venues"


@dataclass(frozen=True, slots=True)
class VenueKind:
    """One kind of venue: what ``kind: <name>`` in a venue config means.

    ``settings`` is the adapter's pydantic model (a ``VenueSettings``) for
    the YAML section named after the kind (``binance:``, ``paper:``);
    ``factory`` builds the venue's subtree from a ``VenueContext``.
    """

    name: str
    settings: type[VenueSettings]
    factory: Callable[[VenueContext[Any]], VenueBuild]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"VenueKind.name={self.name!r}: letters, digits, '_' and '-' only")
        if self.name in _RESERVED:
            raise ValueError(f"VenueKind.name={self.name!r} is a venue config key of its own")


#: Keys of every venue config; a kind named like one could not have its section.
_RESERVED = frozenset({"name", "kind", "settings", "breaker", "backoff"})


class VenueKindError(LookupError):
    """No venue kind of that name is installed (the message lists those that are)."""


@dataclass
class _Registry:
    kinds: dict[str, VenueKind] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    loaded: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)

    def load_entry_points(self) -> None:
        with self.lock:
            if self.loaded:
                return
            self.loaded = True
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                self._load(entry)

    def _load(self, entry: EntryPoint) -> None:
        try:
            kind = entry.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
            self._broken(entry, f"cannot import {entry.value} ({type(exc).__name__}: {exc})")
            return
        if not isinstance(kind, VenueKind):
            self._broken(entry, f"{entry.value} is a {type(kind).__name__}, not a VenueKind")
            return
        if kind.name != entry.name:
            self._broken(entry, f"{entry.value} declares kind {kind.name!r}, not {entry.name!r}")
            return
        # A kind registered by code before the first lookup wins over the entry point.
        self.kinds.setdefault(kind.name, kind)

    def _broken(self, entry: EntryPoint, reason: str) -> None:
        self.broken[entry.name] = reason
        logger.error("venue kind %r (entry point %s) did not load: %s", entry.name, entry, reason)


_registry = _Registry()


def register_venue_kind(kind: VenueKind, *, replace: bool = False) -> None:
    """Make ``kind`` usable as ``kind: <name>`` in venue configs.

    Registering a name that is already taken is refused unless ``replace``:
    two adapters claiming one kind is a packaging mistake to surface, not
    to settle silently."""
    if not isinstance(kind, VenueKind):
        raise TypeError(f"register_venue_kind takes a VenueKind, not {type(kind).__name__}")
    with _registry.lock:
        _registry.load_entry_points()
        current = _registry.kinds.get(kind.name)
        if current is not None and current is not kind and not replace:
            raise ValueError(f"venue kind {kind.name!r} is registered already")
        _registry.kinds[kind.name] = kind
        _registry.broken.pop(kind.name, None)


def unregister_venue_kind(name: str) -> bool:
    """Forget a kind (a test's inline adapter, say); True if it was registered."""
    with _registry.lock:
        return _registry.kinds.pop(name, None) is not None


def get_venue_kind(name: str) -> VenueKind:
    """The kind named ``name``; ``VenueKindError`` names the installed ones otherwise."""
    with _registry.lock:
        _registry.load_entry_points()
        kind = _registry.kinds.get(name)
        if kind is not None:
            return kind
        installed = ", ".join(sorted(_registry.kinds)) or "none"
        message = f"unknown venue kind {name!r} (installed: {installed})"
        if name in _registry.broken:
            message = f"venue kind {name!r} is installed but did not load: {_registry.broken[name]}"
        elif _registry.broken:
            failed = "; ".join(f"{n}: {why}" for n, why in sorted(_registry.broken.items()))
            message += f"; failed to load: {failed}"
        raise VenueKindError(message)


def installed_venue_kinds() -> dict[str, VenueKind]:
    """Every kind that loaded, by name."""
    with _registry.lock:
        _registry.load_entry_points()
        return dict(_registry.kinds)


def broken_venue_kinds() -> dict[str, str]:
    """Entry points that did not load, by name, with the reason."""
    with _registry.lock:
        _registry.load_entry_points()
        return dict(_registry.broken)


def reload_venue_kinds() -> None:
    """Look at the installed entry points again: after installing a package at
    runtime, or to restore the registry after a test registered its own kind."""
    with _registry.lock:
        _registry.loaded = False
        _registry.broken.clear()
        _registry.load_entry_points()
