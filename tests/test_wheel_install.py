"""Installed like any package: the wheel, in a fresh venv, away from the checkout.

An editable install reads ``src/`` directly, so a resource missing from the
wheel (``_resources/paper.yaml`` once was) only shows up for a user who runs
``pip install tradenode-*.whl``. These tests build the wheel from a copy of the
working tree, install it into a new venv in a temporary directory (its
dependencies come from the package index, as they would for a user) and run
the commands from a working directory outside the checkout, with no
``PYTHONPATH``, so nothing can fall back on the checkout's ``src``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]

# Building (with build isolation: it needs setuptools>=77) and installing the
# dependencies from the index takes ~25 s here, far more on a cold pip cache.
pytestmark = pytest.mark.timeout(600)

# What a source distribution of the project holds; the rest of the checkout
# (tests, benchmarks, docs, the .venv) has no business in the wheel.
_PROJECT_FILES = ("pyproject.toml", "README.md", "MANIFEST.in", "LICENSE", "NOTICE")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    source: Path  # the copy of src/tradenode that the wheel was built from
    venv: Path
    cwd: Path  # a working directory outside the checkout
    env: dict[str, str]

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _outside_checkout(path: Path) -> Path:
    resolved = path.resolve()
    assert not resolved.is_relative_to(REPO.resolve()), f"{resolved} lies inside {REPO}"
    return resolved


def _clean_env(venv: Path) -> dict[str, str]:
    """The caller's environment with nothing that points Python at the checkout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(
    args: list[str | Path], *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=540,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = _outside_checkout(tmp_path_factory.mktemp("wheel-install"))
    # Build from a copy: setuptools writes build/ and *.egg-info into the tree
    # it builds, and the checkout is shared with others at work.
    tree = root / "tree"
    tree.mkdir()
    for name in _PROJECT_FILES:
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, tree / name)
    shutil.copytree(
        REPO / "src",
        tree / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    dist = root / "dist"
    venv = root / "venv"
    env = _clean_env(venv)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, tree],
        env=env,
        cwd=root,
    )
    (wheel,) = dist.glob("tradenode-*.whl")
    # No pip inside the new venv (ensurepip alone takes ~9 s): the running
    # pip installs into it through --python.
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env=env, cwd=root)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv / "bin" / "python",
            "install",
            "--quiet",
            "--no-compile",
            wheel,
        ],
        env=env,
        cwd=root,
    )
    cwd = root / "elsewhere"
    cwd.mkdir()
    return Installed(wheel=wheel, source=tree / "src" / "tradenode", venv=venv, cwd=cwd, env=env)


def test_the_wheel_ships_every_file_the_package_reads(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        shipped = set(archive.namelist())
    assert "tradenode/_resources/paper.yaml" in shipped
    assert "tradenode/py.typed" in shipped
    resources = [
        path.relative_to(installed.source.parent).as_posix()
        for path in installed.source.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"}
    ]
    assert resources, "no non-Python file under src/tradenode: the copy went wrong"
    missing = sorted(name for name in resources if name not in shipped)
    assert not missing, f"in src/tradenode but not in the wheel: {missing}"


def test_the_venv_imports_the_installed_package_not_the_checkout(installed: Installed) -> None:
    probe = (
        "import json, sysconfig, tradenode; "
        "print(json.dumps([tradenode.__file__, sysconfig.get_paths()['purelib']]))"
    )
    result = _run([installed.bin / "python", "-c", probe], cwd=installed.cwd, env=installed.env)
    module, purelib = (Path(path).resolve() for path in json.loads(result.stdout))
    assert module.is_relative_to(installed.venv), module
    assert module.is_relative_to(purelib), (module, purelib)
    _outside_checkout(module)


def test_tradenode_run_on_the_embedded_paper_config(installed: Installed) -> None:
    result = _run(
        [installed.bin / "tradenode", "run", "--duration", "2"],
        cwd=installed.cwd,
        env=installed.env,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "node paper-node stopped" in result.stdout, result.stdout


def test_tradenode_venue_binance_serves_and_stops_on_sigterm(installed: Installed) -> None:
    process = subprocess.Popen(
        [str(installed.bin / "tradenode"), "venue", "binance"],
        cwd=installed.cwd,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the venue is listening
        try:
            urls = json.loads(line)
        except json.JSONDecodeError:
            process.kill()
            _, err = process.communicate(timeout=60)
            pytest.fail(f"no JSON line on stdout: {line!r}\n{err}")
        assert set(urls) == {"rest", "ws_api", "stream", "admin"}
        assert urls["rest"].startswith("http://127.0.0.1:")
        assert urls["ws_api"] == urls["rest"].replace("http://", "ws://") + "/ws-api/v3"
        assert urls["stream"] == urls["rest"].replace("http://", "ws://")
        with httpx.Client() as http:
            served = http.get(f"{urls['rest']}/api/v3/time")
        assert served.status_code == 200
        assert isinstance(served.json()["serverTime"], int)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip() == "", out
    assert "Traceback" not in err, err
