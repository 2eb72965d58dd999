"""``tradenode ctl`` against a running node's control API (click's CliRunner, real HTTP)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

# The `tradenode` command itself, as the shell runs it (the click group has no public name).
from tradenode._cli import main
from tradenode.actors import EntryKind, decode_entry

# The ctl group, to walk its commands (it has no public name either).
from tradenode.control._ctl import ctl as ctl_group
from tradenode.journal import Journal
from tradenode.messages import OrderFilled, OrderStatus, OrderType, Side
from tradenode.supervision import ManualClock
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceVenue

from ._binance_helpers import market, venue_clock
from ._node_helpers import Harness, node_from_file

TOKEN = "tok-ops-0123456789abcdef"

CONFIG = """
node: {{name: ctlnode, seed: 5}}
venues:
  - {{name: paper, paper: {{tick_interval_ms: 1000}}}}
oms: {{ack_timeout: 30}}
journal: {{path: {journal}, fsync: none}}
control: {{enabled: true, tokens: {{ops: "${{CTL_TOKEN}}"}}}}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(CONFIG.format(journal=tmp_path / "journal"))
    return path


@pytest.fixture
def h(config_file: Path, clock: ManualClock) -> Iterator[Harness]:
    with node_from_file(config_file, clock, {"CTL_TOKEN": TOKEN}) as harness:
        yield harness


def ctl(config_file: Path, *args: str, token: str | None = TOKEN) -> tuple[int, str]:
    env = {"TRADENODE_TOKEN": token or "", "CTL_TOKEN": TOKEN}
    result = CliRunner().invoke(main, ["ctl", "--config", str(config_file), *args], env=env)
    return result.exit_code, result.output


def test_reads_as_tables_and_json(h: Harness, config_file: Path) -> None:
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.1"), venue="paper"))
    h.wait_for(OrderFilled, coid)
    h.sync()
    code, out = ctl(config_file, "orders")
    assert code == 0, out
    assert out.splitlines()[0].split()[:3] == ["CLIENT_ORDER_ID", "STRATEGY", "VENUE"]
    assert coid in out and "FILLED" in out
    code, out = ctl(config_file, "--json", "positions")
    assert code == 0 and json.loads(out)[0]["quantity"] == "0.1"
    for command in ("status", "tree", "fills", "pnl", "breakers", "risk", "approvals", "parents"):
        code, out = ctl(config_file, command)
        assert code == 0, (command, out)
        assert TOKEN not in out
    code, out = ctl(config_file, "breakers")
    assert "paper" in out and "closed" in out


def test_actions_need_the_token_and_are_audited(
    h: Harness, config_file: Path, tmp_path: Path
) -> None:
    code, out = ctl(config_file, "halt", token=None)
    assert code != 0 and "401" in out and "unauthorized" in out
    code, out = ctl(config_file, "halt", token="wrong-token-0123456789")
    assert code != 0 and "403" in out
    code, out = ctl(config_file, "--json", "risk")
    assert json.loads(out)["state"] == "ACTIVE"
    resting = h.do(
        lambda ctx: ctx.submit_order(
            "BTCUSDT",
            Side.BUY,
            Decimal("0.1"),
            order_type=OrderType.LIMIT,
            price=Decimal("1000"),
            venue="paper",
        )
    )
    h.wait_status(resting, OrderStatus.ACCEPTED)
    assert ctl(config_file, "reduce-only")[0] == 0
    assert ctl(config_file, "resume")[0] == 0
    code, out = ctl(config_file, "--json", "kill-switch")
    assert code == 0 and json.loads(out)["cancels_confirmed"] == 1
    assert ctl(config_file, "dlq-reprocess", "paper")[0] == 0
    code, out = ctl(config_file, "approve", "nothing-pending")
    assert code != 0 and "not_pending" in out
    assert ctl(config_file, "snapshot")[0] == 0
    code, out = ctl(config_file, "audit")
    assert code == 0 and out.splitlines()[0].split() == ["WHO", "ACTION", "RESULT"]
    with Journal.open_read_only(tmp_path / "journal") as log:
        entries = [decode_entry(p) for _, p in log.replay(0)]
    audited = [
        (e.who, e.action, e.result.split(":")[0]) for e in entries if e.kind is EntryKind.AUDIT
    ]
    assert audited == [
        ("ops", "trading-state", "ok"),
        ("ops", "trading-state", "ok"),
        ("ops", "kill-switch", "ok"),
        ("ops", "dlq-reprocess", "ok"),
        ("ops", "approve", "refused 404 not_pending"),
        ("ops", "journal-snapshot", "ok"),
    ]
    # The journal's own tools read the audit records back (and never a token).
    verified = CliRunner().invoke(main, ["journal", "verify", "--json", str(tmp_path / "journal")])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert report["sound"] and report["entries_replayed"] == len(entries)
    shown = CliRunner().invoke(main, ["journal", "show", str(tmp_path / "journal")])
    assert shown.exit_code == 0
    assert shown.output.count(" audit ") == len(audited)
    assert "who=ops action=kill-switch" in shown.output
    assert TOKEN not in shown.output


def test_a_binance_venue_added_traded_and_removed_from_the_shell(
    h: Harness,
    config_file: Path,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with BinanceVenue(seed=11, clock=venue_clock(clock)) as venue:
        snippet = tmp_path / "binance.yaml"
        snippet.write_text(
            f"name: binance\nkind: binance\nbinance:\n  environment: custom\n"
            f"  api_key: {DEFAULT_API_KEY}\n  api_secret: '${{BINANCE_SECRET}}'\n"
            f"  rest_url: {venue.rest_url}\n  ws_api_url: {venue.ws_api_url}\n"
            f"  stream_url: {venue.stream_url}\n  symbols: [BTCUSDT]\n"
        )
        # The node (this process) interpolates ${BINANCE_SECRET} from its environment.
        monkeypatch.setenv("BINANCE_SECRET", DEFAULT_API_SECRET)
        code, out = ctl(config_file, "venue", "add", str(snippet))
        assert code == 0, out
        coid = h.do(market(Side.BUY, "0.2"))
        h.wait_status(coid, OrderStatus.FILLED)
        outputs = [out]
        for command in ("status", "orders", "breakers", "audit"):
            code, out = ctl(config_file, command)
            assert code == 0
            outputs.append(out)
        assert coid in outputs[2]
        code, out = ctl(config_file, "venue", "remove", "binance")
        assert code == 0 and h.node.directory.venue("binance") is None
        outputs.append(out)
        assert all(DEFAULT_API_SECRET not in text and TOKEN not in text for text in outputs)


def test_execution_mode_from_the_shell(h: Harness, config_file: Path) -> None:
    code, out = ctl(config_file, "--json", "mode", "SEMI_AUTO")
    assert code == 0 and json.loads(out) == {"mode": "SEMI_AUTO"}
    code, out = ctl(config_file, "mode", "NOPE")
    assert code != 0 and "invalid_mode" in out
    code, out = ctl(config_file, "--json", "mode", "--strategy", "s1", "MANUAL")
    assert code == 0 and json.loads(out) == {"mode": "MANUAL", "strategy": "s1"}
    code, out = ctl(config_file, "--json", "mode", "--strategy", "s1")
    assert code == 0 and json.loads(out) == {"mode": "SEMI_AUTO", "strategy": "s1"}
    assert h.node.execution_mode().value == "SEMI_AUTO"


def test_ctl_in_another_process_acts_on_tradenode_run(config_file: Path, tmp_path: Path) -> None:
    """As an operator does it: `tradenode run` in one process, `tradenode ctl` in another."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CTL_TOKEN": TOKEN}
    env.pop("TRADENODE_TOKEN", None)
    node = subprocess.Popen(
        [sys.executable, "-m", "tradenode", "run", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert node.stdout is not None
        line = node.stdout.readline()  # printed once the node (and its control API) started
        assert "running (Ctrl-C to stop" in line, line

        def shell_ctl(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
            ctl_env = {k: v for k, v in env.items() if k != "CTL_TOKEN"}
            if token is not None:
                ctl_env["TRADENODE_TOKEN"] = token
            return subprocess.run(
                [sys.executable, "-m", "tradenode", "ctl", "--config", str(config_file), *args],
                check=False,
                capture_output=True,
                text=True,
                env=ctl_env,
                timeout=60,
            )

        refused = shell_ctl("halt")
        assert refused.returncode == 1 and "401" in refused.stderr
        assert shell_ctl("halt", token=TOKEN).returncode == 0
        risk = shell_ctl("--json", "risk")
        assert risk.returncode == 0 and json.loads(risk.stdout)["state"] == "HALTED"
        tree = shell_ctl("tree")
        assert tree.returncode == 0 and "restarts" in tree.stdout
    finally:
        node.send_signal(signal.SIGTERM)
        out, err = node.communicate(timeout=60)
    assert node.returncode == 0, err
    assert TOKEN not in out + err
    # The URL file goes with the node.
    assert not (tmp_path / "journal.control.json").exists()


def test_every_command_has_help_without_a_node_or_url(tmp_path: Path) -> None:
    """``tradenode ctl <command> --help`` needs neither --url nor a running node."""

    def commands(prefix: list[str], command: object) -> list[list[str]]:
        found = [prefix]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found += commands([*prefix, name], sub)
        return found

    every = commands([], ctl_group)
    assert ["orders"] in every and ["venue", "add"] in every and ["alerts"] in every
    for path in every:
        result = CliRunner().invoke(main, ["ctl", *path, "--help"], env={"TRADENODE_TOKEN": ""})
        assert result.exit_code == 0, (path, result.output)
        assert result.output.startswith(f"Usage: main ctl {' '.join(path)}".rstrip()), path
    # Without --help a command still says how to find the node.
    result = CliRunner().invoke(main, ["ctl", "orders"])
    assert result.exit_code == 2 and "give --url, or --config" in result.output
