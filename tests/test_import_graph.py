"""The layers import one way: core <- journal <- OMS, and no adapter below the kit.

- the core (``tradenode.messages``, ``tradenode.supervision``) imports nothing
  of the journal, the OMS, the node, the brokers or the testing package;
- the journal is generic storage: it imports nothing from ``tradenode.actors``
  (the OMS), save the names it exported before the OMS took its entries and
  replay back, which it serves on first use (pinned below, to shrink);
- the OMS (``tradenode.actors``) imports the journal and the core, never the
  node's own modules, an adapter or the testing package.

Every import statement counts, inside functions and ``if TYPE_CHECKING:``
blocks too, read with ``tests/test_venue_kit.py``'s scanner.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# The scanner of tests/test_venue_kit.py: every import of a file, relative ones resolved.
from .test_venue_kit import SRC, _imports

CORE = ("messages", "supervision")
JOURNAL = "journal"
OMS = "actors"
#: Modules every layer may import: the exception tree.
SHARED = ("tradenode._exceptions",)
#: What the OMS may take from the package's top level: the config model it is built from
#: and the crash points the campaign uses; never the node's own modules.
OMS_FROM_THE_TOP = ("tradenode._config", "tradenode._crashpoints")

#: The journal's only imports of the OMS, each a re-export of names that moved there,
#: kept for code that still imports them from the journal (``tradenode.testing.campaign``
#: and tests). Nothing may join this list; an entry leaves once its importers move.
MOVED_NAMES = {
    "__init__.py": ("tradenode.actors._oms_entries", "tradenode.actors._oms_replay"),
    "_inspect.py": ("tradenode.actors._oms_inspect",),
}


def _files(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _ours(path: Path) -> set[str]:
    """Every ``tradenode`` module ``path`` imports, submodules of ``from x import y`` included."""
    return {name for name in _imports(path) if name == "tradenode" or name.startswith("tradenode.")}


def _under(name: str, modules: tuple[str, ...]) -> bool:
    """``name`` is one of ``modules`` or inside one (``from m import x`` scans as ``m.x``)."""
    return any(name == module or name.startswith(f"{module}.") for module in modules)


def _layers(*packages: str) -> tuple[str, ...]:
    return tuple(f"tradenode.{package}" for package in packages)


def _named(path: Path) -> str:
    return str(path.relative_to(SRC))


def _outside(path: Path, allowed: tuple[str, ...], exact: tuple[str, ...] = ()) -> list[str]:
    return sorted(name for name in _ours(path) if not _under(name, allowed) and name not in exact)


@pytest.mark.parametrize("path", [p for package in CORE for p in _files(package)], ids=_named)
def test_the_core_imports_only_the_core(path: Path) -> None:
    bad = _outside(path, (*SHARED, *_layers(*CORE)))
    assert bad == [], f"{_named(path)} imports {bad}"


@pytest.mark.parametrize("path", _files(JOURNAL), ids=_named)
def test_the_journal_imports_only_the_core_and_itself(path: Path) -> None:
    moved = MOVED_NAMES.get(path.name, ()) if path.parent == SRC / JOURNAL else ()
    # ``from ..actors import _oms_entries`` also scans as the package itself.
    package = _layers(OMS) if moved else ()
    bad = _outside(path, (*SHARED, *_layers(*CORE, JOURNAL), *moved), package)
    assert bad == [], f"{_named(path)} imports {bad}"


@pytest.mark.parametrize("path", _files(OMS), ids=_named)
def test_the_oms_imports_the_journal_and_the_core_and_no_adapter(path: Path) -> None:
    # Not even tradenode.brokers' kit: adapters build on the OMS, not the other way.
    bad = _outside(path, (*SHARED, *OMS_FROM_THE_TOP, *_layers(*CORE, JOURNAL, OMS)))
    assert bad == [], f"{_named(path)} imports {bad}"


def test_the_moved_names_are_the_oms_objects_themselves() -> None:
    from tradenode import journal
    from tradenode.actors import _oms_entries, _oms_inspect, _oms_replay
    from tradenode.journal import _inspect

    moved = journal._MOVED
    assert set(moved) <= set(journal.__all__)
    for name, module in moved.items():
        defining = {"_oms_entries": _oms_entries, "_oms_replay": _oms_replay}[module]
        assert getattr(journal, name) is getattr(defining, name), name
    assert _inspect.verify is _oms_inspect.verify
    assert _inspect.state_from_snapshot is _oms_replay.state_from_snapshot
    with pytest.raises(AttributeError, match="has no attribute 'recover'"):
        _ = journal.recover


def test_src_imports_no_moved_name_from_the_journal() -> None:
    """Only code outside the layers (the testing package) still uses the old paths."""
    moved = {f"tradenode.journal.{name}" for name in _moved_names()} | {
        "tradenode.journal._inspect"
    }
    users = sorted(
        _named(path)
        for path in SRC.rglob("*.py")
        if not _under(_module(path), _layers("testing", JOURNAL)) and _ours(path) & moved
    )
    assert users == []


def test_loading_the_journal_loads_no_oms_module() -> None:
    probe = (
        "import sys, tradenode.journal;"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('tradenode.actors'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _moved_names() -> set[str]:
    from tradenode import journal

    return set(journal._MOVED)


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_check_sees_an_oms_import_inside_a_journal_function() -> None:
    probe = SRC / JOURNAL / "_probe_for_test.py"
    source = "def later():\n    from ..actors._oms_state import OmsState\n"
    found = {name for name in _imports(probe, source) if name.startswith("tradenode.")}
    assert not _under("tradenode.actors._oms_state", (*SHARED, *_layers(*CORE, JOURNAL)))
    assert "tradenode.actors._oms_state" in found
