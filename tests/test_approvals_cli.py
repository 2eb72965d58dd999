"""``tradenode approvals``: from a node's own console (``run --approve-interactive``),
and from another shell (listing from the journal; decisions need the node)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradenode import Node, parse_config

# The console is the CLI's internal; tests drive it as the run loop does.
from tradenode._approvals_cli import ConsoleReader, run_console_line

# The command line's group, as `tradenode` registers it.
from tradenode._cli import main

# The embedded paper config's text, which `tradenode run` uses without a CONFIG.
from tradenode._config import default_config_text
from tradenode.messages import DenialCode, OrderDenied, OrderStatus, Side
from tradenode.supervision import ManualClock

from ._node_helpers import BASE_CONFIG, Harness, running_node

MANUAL = "execution_mode: MANUAL\napproval: {timeout: 600}\n"


def submit(h: Harness, quantity: str = "0.1") -> str:
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D(quantity), venue="paper"))
    h.sync()
    return str(coid)


def test_the_console_lists_approves_and_rejects_on_the_node_it_runs_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_node(MANUAL) as h:
        first, second = submit(h), submit(h, "0.2")
        capsys.readouterr()
        run_console_line(h.node, "approvals list")
        listed = capsys.readouterr().out
        assert "pending approvals: 2" in listed
        assert first in listed and second in listed and "MANUAL" in listed
        run_console_line(h.node, "approvals list --json")
        rows = json.loads(capsys.readouterr().out)
        assert [row["id"] for row in rows] == [first, second]
        assert rows[1]["quantity"] == "0.2"

        run_console_line(h.node, f"approvals approve {first} --who alice")
        assert f"approved {first} (by alice)" in capsys.readouterr().out
        h.wait_status(first, OrderStatus.FILLED)
        run_console_line(h.node, f"approvals reject {second} --who bob --reason 'too big'")
        assert "rejected" in capsys.readouterr().out
        denial = h.wait_for(OrderDenied, second)[0]
        assert denial.code is DenialCode.APPROVAL_REJECTED and "too big" in denial.reason

        # Mistakes are printed, never raised into the run loop.
        run_console_line(h.node, f"approvals approve {first} --who alice")
        assert "is not pending" in capsys.readouterr().err
        run_console_line(h.node, "approvals approve")
        assert "Missing argument" in capsys.readouterr().err
        run_console_line(h.node, "approvals reject 'unclosed")
        assert "console:" in capsys.readouterr().err
        run_console_line(h.node, "mode YOLO")
        assert "YOLO" in capsys.readouterr().err
        run_console_line(h.node, "mode semi_auto")
        assert "execution mode: SEMI_AUTO" in capsys.readouterr().out
        assert h.node.execution_mode().value == "SEMI_AUTO"


def test_the_console_reader_hands_lines_to_the_loop_in_order(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("approvals list\nmode MANUAL\n", encoding="utf-8")
    with path.open(encoding="utf-8") as stream:
        reader = ConsoleReader(stream)
        reader._thread.join(timeout=10)
        assert reader.lines() == ["approvals list\n", "mode MANUAL\n"]
        assert reader.lines() == []


def test_from_another_shell_list_reads_the_journal_and_decisions_say_what_is_missing(
    tmp_path: Path,
) -> None:
    text = BASE_CONFIG + MANUAL + f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record}}\n"
    node = Node(parse_config(text), clock=ManualClock())
    node.start()
    h = Harness(node, node.clock)  # type: ignore[arg-type]
    try:
        coid = submit(h)
        runner = CliRunner()
        listed = runner.invoke(main, ["approvals", "list", "--journal", str(tmp_path / "j")])
        assert listed.exit_code == 0, listed.output
        assert "pending approvals: 1" in listed.output and coid in listed.output
    finally:
        node.stop(timeout=20)
    as_json = runner.invoke(main, ["approvals", "list", "--journal", str(tmp_path / "j"), "--json"])
    assert [row["id"] for row in json.loads(as_json.output)] == [coid]
    refused = runner.invoke(main, ["approvals", "approve", coid, "--who", "alice"])
    assert refused.exit_code == 2
    assert "--approve-interactive" in refused.output and "control API" in refused.output
    refused = runner.invoke(main, ["approvals", "reject", coid, "--who", "a", "--reason", "r"])
    assert refused.exit_code == 2
    missing = runner.invoke(main, ["approvals", "list"])
    assert missing.exit_code == 2 and "--journal" in missing.output


def test_run_approve_interactive_takes_console_commands_on_stdin(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(default_config_text() + "\nexecution_mode: MANUAL\n", encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradenode",
            "run",
            str(config),
            "--approve-interactive",
            "--duration",
            "60",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("approvals list\nmode SEMI_AUTO\n")
    process.stdin.flush()
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if "execution mode: SEMI_AUTO" in line:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    text = "".join(seen)
    assert "pending approvals:" in text
    assert "execution mode: SEMI_AUTO" in text


TOKEN = "tok-approver-0123456789abcdef"

CONTROLLED = """
node: {{name: apnode, seed: 5}}
venues:
  - {{name: paper, paper: {{tick_interval_ms: 1000}}}}
oms: {{ack_timeout: 30}}
journal: {{path: {journal}, fsync: none}}
control: {{enabled: true, tokens: {{alice: "${{AP_TOKEN}}"}}}}
execution_mode: MANUAL
approval: {{timeout: 600}}
"""


def test_from_another_shell_through_the_control_api(tmp_path: Path) -> None:
    """With the node's control API on, `tradenode approvals --config NODE.yaml ...` lists,
    approves and rejects from another process; who decided is the token's name."""
    config_file = tmp_path / "node.yaml"
    config_file.write_text(CONTROLLED.format(journal=tmp_path / "journal"), encoding="utf-8")
    config = parse_config(config_file.read_text(), environ={"AP_TOKEN": TOKEN})
    node = Node(config, clock=ManualClock())
    node.start()
    h = Harness(node, node.clock)  # type: ignore[arg-type]
    env = {"TRADENODE_TOKEN": TOKEN, "AP_TOKEN": TOKEN}

    def approvals(*args: str, token: str = TOKEN) -> tuple[int, str]:
        result = CliRunner().invoke(
            main,
            ["approvals", "--config", str(config_file), *args],
            env={**env, "TRADENODE_TOKEN": token},
        )
        return result.exit_code, result.output

    try:
        first, second = submit(h), submit(h, "0.2")
        code, out = approvals("list")
        assert code == 0 and "pending approvals: 2" in out and first in out, out
        code, out = approvals("list", "--json")
        assert [row["id"] for row in json.loads(out)] == [first, second]
        code, out = approvals("approve", first, token="wrong-token")
        assert code != 0 and "403" in out
        assert len(node.pending_approvals()) == 2
        code, out = approvals("approve", first)
        assert code == 0 and f"approved {first}" in out, out
        h.wait_status(first, OrderStatus.FILLED)
        code, out = approvals("reject", second, "--reason", "too big")
        assert code == 0, out
        denial = h.wait_for(OrderDenied, second)[0]
        assert denial.code is DenialCode.APPROVAL_REJECTED
        assert "rejected by alice: too big" in denial.reason
        code, out = approvals("approve", second)
        assert code != 0 and "not pending" in out
    finally:
        node.stop(timeout=20)
