"""``tradenode approvals``: list, approve or reject orders awaiting a person's approval.

An approval acts on a running node, which the command reaches in one of three ways:

* from another shell, through the node's control API (``control:`` enabled):
  ``tradenode approvals --config NODE.yaml approve ID`` (or ``--url``), the
  token from ``--token-env`` (``TRADENODE_TOKEN``); the node records the
  token's name as who decided, as ``tradenode ctl approve`` does;
* in the node's own process: ``tradenode run --approve-interactive`` reads
  commands from its standard input, one per line, in this same syntax
  (``approvals list``, ``approvals approve ID --who NAME``, ``approvals reject
  ID --who NAME --reason TEXT``, plus ``mode MODE`` and ``resume --who NAME``);
* read-only, ``approvals list --journal PATH`` reads what is pending from the
  node's approvals journal (even while the node runs, even without a control API).

Without any of them, ``approve`` and ``reject`` say what is missing and exit 2.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .actors._approvals import ApprovalLog
from .control._cli_options import cacert_option

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["ConsoleReader", "approvals_group", "run_console_line"]

_NO_NODE = (
    "{what} acts on a running node: give its control API (--config NODE.yaml or --url, "
    "with control.enabled), or type `approvals {what} ...` in the console of "
    "`tradenode run --approve-interactive` (or call Node.{what}() in Python)"
)


@dataclass(frozen=True)
class _Remote:
    """A running node reached through its control API."""

    target: Any  # control.ControlClient (imported with httpx, only when used)


@click.group("approvals")
@click.option("--url", default=None, help="The node's control API URL.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The running node's config (its control URL is read from the file it wrote).",
)
@click.option(
    "--token-env",
    default="TRADENODE_TOKEN",
    show_default=True,
    help="The environment variable holding the control API token.",
)
@cacert_option
@click.pass_context
def approvals_group(
    ctx: click.Context,
    url: str | None,
    config_path: str | None,
    token_env: str,
    ca_file: str | None,
) -> None:
    """Orders waiting for a person's approval (execution modes SEMI_AUTO and MANUAL)."""
    if ctx.obj is None and (url or config_path):
        # The control API's client; imported only on this path (httpx).
        from .control._ctl import ControlClient, resolve_control_url  # noqa: PLC0415

        token = os.environ.get(token_env) or None
        client = ControlClient(resolve_control_url(url, config_path), token, False, ca_file=ca_file)
        ctx.obj = _Remote(client)


@approvals_group.command("list")
@click.option(
    "--journal",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The node's journal directory (read its approvals journal, read-only).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of the pending approvals.")
@click.pass_obj
def approvals_list(node: Node | _Remote | None, journal: Path | None, as_json: bool) -> None:
    """List the pending approvals, oldest first."""
    if isinstance(node, _Remote):
        rows = node.target.call("GET", "/v1/approvals")
    elif node is not None:
        rows = [approval.describe() for approval in node.pending_approvals()]
    elif journal is not None:
        rows = [approval.describe() for approval in ApprovalLog.read(journal / "approvals")]
    else:
        raise click.UsageError(
            "give the node's control API (--config/--url before `list`) or --journal PATH"
        )
    _print_pending(rows, as_json=as_json)


@approvals_group.command("approve")
@click.argument("approval_id")
@click.option(
    "--who",
    default=None,
    help="Who approves (in a node's console; through the control API it is the token's name).",
)
@click.pass_obj
def approvals_approve(node: Node | _Remote | None, approval_id: str, who: str | None) -> None:
    """Send a pending order on (routed, risk-checked, then to its venue)."""
    if isinstance(node, _Remote):
        node.target.call("POST", f"/v1/approvals/{approval_id}/approve")
        click.echo(f"approved {approval_id} (by the token's holder)")
        return
    if node is None:
        raise click.UsageError(_NO_NODE.format(what="approve"))
    if not who:
        raise click.UsageError("--who: name the person approving")
    if not node.approve(approval_id, who):
        raise click.ClickException(f"{approval_id} is not pending")
    click.echo(f"approved {approval_id} (by {who})")


@approvals_group.command("reject")
@click.argument("approval_id")
@click.option(
    "--who",
    default=None,
    help="Who rejects (in a node's console; through the control API it is the token's name).",
)
@click.option("--reason", required=True, help="Why (told to the strategy in its denial).")
@click.pass_obj
def approvals_reject(
    node: Node | _Remote | None, approval_id: str, who: str | None, reason: str
) -> None:
    """Deny a pending order (APPROVAL_REJECTED, with the reason)."""
    if isinstance(node, _Remote):
        node.target.call("POST", f"/v1/approvals/{approval_id}/reject", json={"reason": reason})
        click.echo(f"rejected {approval_id} (by the token's holder: {reason})")
        return
    if node is None:
        raise click.UsageError(_NO_NODE.format(what="reject"))
    if not who:
        raise click.UsageError("--who: name the person rejecting")
    if not node.reject(approval_id, who, reason):
        raise click.ClickException(f"{approval_id} is not pending")
    click.echo(f"rejected {approval_id} (by {who}: {reason})")


def _print_pending(rows: list[dict[str, str]], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"pending approvals: {len(rows)}")
    for row in rows:
        price = f" @ {row['price']}" if row["price"] else ""
        click.echo(
            f"  {row['id']}  {row['strategy']}  {row['side']} {row['quantity']} {row['symbol']}"
            f"{price} on {row['venue']} ({row['type']}): {row['why']}"
        )


# -- the console of `tradenode run --approve-interactive` --------------------------------


@click.group("console", add_help_option=False)
def _console() -> None:
    """Commands a running node's console takes."""


_console.add_command(approvals_group)


@_console.command("mode")
@click.argument("mode")
@click.option("--strategy", default=None, help="Set this strategy's override instead.")
@click.option("--who", default="console", show_default=True)
@click.pass_obj
def _console_mode(node: Node, mode: str, strategy: str | None, who: str) -> None:
    """Set the execution mode (EMERGENCY flattens every venue and halts)."""
    try:
        report = node.set_execution_mode(
            None if mode.lower() == "none" else mode.upper(), who=who, strategy_id=strategy
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"execution mode: {node.execution_mode(strategy).value}")
    if report is not None:
        click.echo(f"kill switch: complete={report.complete} problems={list(report.problems)}")


@_console.command("resume")
@click.option("--who", required=True)
@click.pass_obj
def _console_resume(node: Node, who: str) -> None:
    """End an emergency: trading active again."""
    click.echo(f"resumed: execution mode {node.resume(who).value}")


def run_console_line(node: Node, line: str) -> None:
    """Run one console line against ``node``; errors are printed, never raised."""
    try:
        args = shlex.split(line)
    except ValueError as exc:
        click.echo(f"console: {exc}", err=True)
        return
    if not args:
        return
    try:
        _console.main(args, prog_name="", standalone_mode=False, obj=node)
    except click.exceptions.Exit:
        pass
    except click.ClickException as exc:
        click.echo(f"console: {exc.format_message()}", err=True)
    except click.Abort:
        click.echo("console: aborted", err=True)


class ConsoleReader:
    """Reads console lines from a stream on a daemon thread; the run loop takes them
    with ``lines()`` and runs them on its own thread, where the node lives."""

    def __init__(self, stream: Any = None) -> None:
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stream = sys.stdin if stream is None else stream
        self._thread = threading.Thread(target=self._read, name="approvals-console", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self._lines.put(line)

    def lines(self) -> list[str]:
        out: list[str] = []
        while True:
            try:
                out.append(self._lines.get_nowait())
            except queue.Empty:
                return out
