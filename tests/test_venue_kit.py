"""The adapter kit's seams: the registry, adapter-owned settings, and a core that
names no venue.

The core (the node, the config model, the registry, the trading actors, the
journal, the messages, the supervision runtime) must reach every venue
through the registry; these tests fail the moment one of its modules imports
an adapter or the testing package, even lazily inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from tradenode import ConfigError, parse_config
from tradenode.brokers.binance import BINANCE, BinanceSettings
from tradenode.brokers.paper import PAPER, PaperSettings

SRC = Path(__file__).resolve().parents[1] / "src" / "tradenode"

#: The core, as the issue names it; each must import no adapter and no testing module.
CORE = ["_node.py", "_config.py", "_registry.py", "actors", "journal", "messages", "supervision"]

#: What the core may import from ``tradenode.brokers``: the kit, never an adapter.
KIT = {"tradenode.brokers", "tradenode.brokers._factory", "tradenode.brokers._base"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, relative imports resolved."""
    source = path.read_text(encoding="utf-8") if source is None else source
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import x`` / ``from .brokers import paper`` import submodules too.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _core_files() -> list[Path]:
    files: list[Path] = []
    for entry in CORE:
        path = SRC / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def _forbidden(name: str) -> bool:
    if name == "tradenode.testing" or name.startswith("tradenode.testing."):
        return True
    if name.startswith("tradenode.brokers."):
        return not any(
            name == kit or name.startswith(f"{kit}.") for kit in KIT - {"tradenode.brokers"}
        )
    return False


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_the_core_imports_no_adapter_and_nothing_from_testing(path: Path) -> None:
    bad = sorted(name for name in _imports(path) if _forbidden(name))
    assert bad == [], f"{path.relative_to(SRC)} imports {bad}"


def test_the_import_check_sees_lazy_and_relative_imports() -> None:
    """The pin above would be worthless if it missed the imports that used to be
    there: a lazy one inside a function, and a relative one."""
    probe = SRC / "_probe_for_test.py"
    source = textwrap.dedent(
        """
        from .brokers.binance import BinanceBroker

        def later():
            from .testing._paper import paper_sim_config
            from .brokers import paper
        """
    )
    found = {name for name in _imports(probe, source) if _forbidden(name)}
    assert {
        "tradenode.brokers.binance",
        "tradenode.testing._paper",
        "tradenode.brokers.paper",
    } <= found


def test_loading_the_node_loads_adapters_only_through_the_registry() -> None:
    """Importing the node and reading a config touches no adapter; the adapters
    load when a venue of their kind is configured (through the entry points)."""
    probe = (
        "import sys, tradenode._node, tradenode._config;"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(("
        "'tradenode.brokers.paper', 'tradenode.brokers.binance', 'tradenode.testing')))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -------------------------------------------------------------------- the registry


def test_the_built_in_kinds_are_registered_through_entry_points() -> None:
    from importlib.metadata import entry_points

    from tradenode.brokers import ENTRY_POINT_GROUP, installed_venue_kinds

    declared = {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared["paper"] == "tradenode.brokers.paper:PAPER"
    assert declared["binance"] == "tradenode.brokers.binance:BINANCE"
    installed = installed_venue_kinds()
    assert installed["paper"] is PAPER and installed["binance"] is BINANCE
    assert PAPER.settings is PaperSettings and BINANCE.settings is BinanceSettings


def test_an_unknown_kind_names_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("venues:\n  - {name: x, kind: binanse}\n")
    assert caught.value.key == "venues[0].kind"
    assert "unknown venue kind 'binanse'" in str(caught.value)
    assert "binance" in str(caught.value) and "paper" in str(caught.value)


@pytest.mark.parametrize(
    ("venue", "key", "words"),
    [
        ("{name: p, paper: {latency_ms: -1}}", "venues[0].paper.latency_ms", "greater than"),
        ("{name: p, paper: {latency: 1}}", "venues[0].paper.latency", "Extra inputs"),
        ("{name: p, latency_ms: 5}", "venues[0].latency_ms", "put it under paper:"),
        (
            "{name: p, kind: paper, binance: {api_key: k}}",
            "venues[0].binance",
            "needs kind: binance",
        ),
        ("{name: b, kind: binance}", "venues[0].binance", "needs a binance: section"),
        ("{name: p, paper: [1, 2]}", "venues[0].paper", "must be a mapping"),
    ],
)
def test_a_venue_settings_error_names_the_key(venue: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"venues:\n  - {venue}\n")
    assert caught.value.key == key
    assert words in str(caught.value)


def test_settings_are_the_kinds_own_model_from_yaml_or_python() -> None:
    from tradenode.brokers import VenueConfig

    config = parse_config("venues:\n  - {name: p, paper: {latency_ms: 3, amend: cancel_replace}}\n")
    settings = config.venues[0].settings
    assert isinstance(settings, PaperSettings)
    assert (settings.latency_ms, settings.amend) == (3.0, "cancel_replace")
    assert isinstance(VenueConfig(name="q").settings, PaperSettings)
    given = VenueConfig(name="q", settings=PaperSettings(latency_ms=7))
    assert given.settings.latency_ms == 7  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="takes PaperSettings, not BinanceSettings"):
        VenueConfig(name="q", settings=BinanceSettings(api_key="k", api_secret="s"))


ENTRY_POINTS_PROBE = """
import json, logging, sys
logging.basicConfig(level=logging.ERROR, stream=sys.stdout, format="LOG %(message)s")
from tradenode import ConfigError, parse_config
from tradenode._registry import broken_venue_kinds, installed_venue_kinds
kinds = sorted(installed_venue_kinds())
broken = broken_venue_kinds()
try:
    parse_config("venues:\\n  - {name: x, kind: missingmod}\\n")
except ConfigError as exc:
    missing = str(exc)
try:
    parse_config("venues:\\n  - {name: x, kind: nope}\\n")
except ConfigError as exc:
    unknown = str(exc)
ok = parse_config("venues:\\n  - {name: p, kind: paper}\\n").venues[0].kind
print(json.dumps({"kinds": kinds, "broken": broken, "missing": missing, "unknown": unknown, "ok": ok}))
"""


def test_an_entry_point_that_fails_to_load_is_reported_by_name_and_others_load(
    tmp_path: Path,
) -> None:
    """A broken third-party adapter (it fails to import, names something that is
    not a VenueKind, or claims another kind's name) is logged and reported by its
    entry point's name; every other kind still loads and configs using them work."""
    dist = tmp_path / "broken_venues-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-venues\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[tradenode.venues]\n"
        "missingmod = no_such_module_anywhere:KIND\n"
        "notakind = json:dumps\n"
        "wrongname = tradenode.brokers.paper:PAPER\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", ENTRY_POINTS_PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={**_environ(), "PYTHONPATH": str(tmp_path)},
    )
    lines = out.stdout.strip().splitlines()
    import json

    result = json.loads(lines[-1])
    assert {"paper", "binance", "oanda"} <= set(result["kinds"])
    assert set(result["broken"]) == {"missingmod", "notakind", "wrongname"}
    assert "no_such_module_anywhere" in result["broken"]["missingmod"]
    assert "not a VenueKind" in result["broken"]["notakind"]
    assert "declares kind 'paper'" in result["broken"]["wrongname"]
    assert "kind 'missingmod' is installed but did not load" in result["missing"]
    assert "ModuleNotFoundError" in result["missing"]
    installed = ", ".join(sorted(result["kinds"]))
    assert f"installed: {installed}" in result["unknown"], "the installed kinds, sorted"
    assert "failed to load: missingmod" in result["unknown"]
    assert result["ok"] == "paper"
    logged = "\n".join(lines[:-1])
    assert "venue kind 'missingmod'" in logged and "venue kind 'notakind'" in logged


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
