"""The ``tradenode`` command line."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import click

from ._config import load_config
from ._exceptions import ConfigError
from ._node import Node, render_tree

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

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = Node(node_config)
    try:
        node.start()
        click.echo(f"tradenode: node {node_config.node.name} running (Ctrl-C to stop)", err=False)
        sys.stdout.flush()
        deadline = None if duration is None else time.monotonic() + duration
        while not stop_requested.is_set() and not node.system.is_terminated:
            remaining = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            if remaining <= 0:
                break
            stop_requested.wait(remaining)
    finally:
        node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = node.status()
    tree = node.tree()
    if tree is not None:
        click.echo("\n".join(render_tree(tree)))
    click.echo(f"tradenode: node {node_config.node.name} stopped ({summary['termination_reason']})")
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    sys.exit(EXIT_NODE_FAILED if node.failed else EXIT_OK)
