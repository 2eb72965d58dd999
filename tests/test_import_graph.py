"""The layers import one way: core <- journal <- OMS, and no adapter below the kit.

- the core (``tradenode.messages``, ``tradenode.supervision``) imports nothing
  of the journal, the OMS, the node, the brokers or the testing package;
- the journal is generic storage: it imports nothing from ``tradenode.actors``
  (the OMS), which owns its journal entries, replay and ``recover()``;
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
    bad = _outside(path, (*SHARED, *_layers(*CORE, JOURNAL)))
    assert bad == [], f"{_named(path)} imports {bad}"


@pytest.mark.parametrize("path", _files(OMS), ids=_named)
def test_the_oms_imports_the_journal_and_the_core_and_no_adapter(path: Path) -> None:
    # Not even tradenode.brokers' kit: adapters build on the OMS, not the other way.
    bad = _outside(path, (*SHARED, *OMS_FROM_THE_TOP, *_layers(*CORE, JOURNAL, OMS)))
    assert bad == [], f"{_named(path)} imports {bad}"


def test_the_journal_no_longer_serves_the_oms_names() -> None:
    """The OMS's entries and replay are exported by ``tradenode.actors`` alone."""
    from tradenode import actors, journal

    for name in ("JournalEntry", "EntryKind", "decode_entry", "replay", "recover", "summarize"):
        assert not hasattr(journal, name), name
        assert name in actors.__all__, name


def test_loading_the_journal_loads_no_oms_module() -> None:
    probe = (
        "import sys, tradenode.journal;"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('tradenode.actors'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_check_sees_an_oms_import_inside_a_journal_function() -> None:
    probe = SRC / JOURNAL / "_probe_for_test.py"
    source = "def later():\n    from ..actors._oms_state import OmsState\n"
    found = {name for name in _imports(probe, source) if name.startswith("tradenode.")}
    assert not _under("tradenode.actors._oms_state", (*SHARED, *_layers(*CORE, JOURNAL)))
    assert "tradenode.actors._oms_state" in found
