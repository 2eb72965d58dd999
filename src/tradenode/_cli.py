"""The ``tradenode`` command line."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ._config import load_config
from ._exceptions import ConfigError
from ._node import Node

__all__ = ["main"]

EXIT_OK, EXIT_NODE_FAILED, EXIT_CONFIG = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tradenode")
def main() -> None:
    """tradenode: a supervised live-trading execution node.

    Turns strategies' decisions into orders at several brokers, tracks them
    to fills and positions, enforces risk limits and heals itself.
    """


@main.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--duration", type=click.FloatRange(min=0), default=None, help="Stop by itself after SECONDS."
)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the final summary as JSON to PATH.",
)
@click.option("--log-level", default="WARNING", show_default=True, help="Python logging level.")
def run(
    config: Path | None, duration: float | None, summary_json: Path | None, log_level: str
) -> None:
    """Launch a node and run until SIGINT/SIGTERM or --duration.

    CONFIG is a YAML node config; without it the node runs on the embedded
    paper venue (config/paper.yaml). Exits 0 after a clean stop, 1 if the
    node's root supervisor gave up, 2 on a config error.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        node_config = load_config(config)
    except ConfigError as exc:
        click.echo(f"tradenode: config error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)

    stop_requested = threading.Event()
    kill_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    def request_kill(signum: int, _frame: FrameType | None) -> None:
        kill_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, request_kill)
    node = Node(node_config)
    try:
        node.start()
        click.echo(
            f"tradenode: node {node_config.node.name} running (Ctrl-C to stop; "
            f"kill -USR1 {os.getpid()} engages the kill switch)"
        )
        sys.stdout.flush()
        deadline = None if duration is None else time.monotonic() + duration
        next_status = time.monotonic() + node_config.status_interval
        while not stop_requested.is_set() and not node.system.is_terminated:
            if kill_requested.is_set():
                kill_requested.clear()
                report = node.kill_switch(flatten=True)
                click.echo(f"tradenode: KILL SWITCH engaged: {report}")
            if time.monotonic() >= next_status:
                click.echo(render_status(node.status()))
                next_status = time.monotonic() + node_config.status_interval
            remaining = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            if remaining <= 0:
                break
            stop_requested.wait(remaining)
        summary = node.status()
    finally:
        node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary.update(
        {
            k: v
            for k, v in node.status().items()
            if k in ("terminated", "termination_reason", "tree")
        }
    )
    click.echo(render_status(summary, final=True))
    click.echo(f"tradenode: node {node_config.node.name} stopped ({summary['termination_reason']})")
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    sys.exit(EXIT_NODE_FAILED if node.failed else EXIT_OK)


def render_status(status: dict[str, Any], *, final: bool = False) -> str:
    """The live status view: orders, fills, positions, PnL, breakers, the tree."""
    title = "final summary" if final else "status"
    lines = [
        f"--- {status['node']} {title} ---",
        f"orders={status.get('total_orders', '?')} fills={status.get('fills', '?')} "
        f"open={status.get('open_orders', '-')} rejections={status.get('rejections', '?')} "
        f"denials={status.get('denials', '?')} realized_pnl={status.get('realized_pnl', '?')}",
    ]
    risk = status.get("risk")
    if isinstance(risk, dict):
        lines.append(f"risk: {risk.get('state')} denials={risk.get('denials')}")
    for position in status.get("positions", []):
        lines.append(
            f"  {position['venue']}:{position['symbol']} qty={position['quantity']} "
            f"avg={position['avg_price']} rpnl={position['realized_pnl']} upnl={position['unrealized_pnl']}"
        )
    for venue, breaker in status.get("breakers", {}).items():
        lines.append(f"breaker {venue}: {breaker}")
    tree = status.get("tree")
    if tree is not None:
        lines.extend(_tree_lines(tree))
    return "\n".join(lines)


def _tree_lines(node: dict[str, Any], indent: str = "") -> list[str]:
    lines = [f"{indent}{node['name']} [{node['state']}, restarts={node['restarts']}]"]
    for child in node["children"]:
        lines.extend(_tree_lines(child, indent + "  "))
    return lines
