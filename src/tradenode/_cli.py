"""The ``tradenode`` command line."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click

from ._approvals_cli import ConsoleReader, approvals_group, run_console_line
from ._config import NodeConfig, load_config
from ._exceptions import ConfigError
from ._node import Node
from ._terminal import StatusDisplay
from .control._ctl import ctl
from .observability import configure_logging, secret_values

__all__ = ["main"]

EXIT_OK, EXIT_NODE_FAILED, EXIT_CONFIG, EXIT_NEVER_CONNECTED = 0, 1, 2, 3


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
@click.option(
    "--approve-interactive",
    is_flag=True,
    help="Read console commands from stdin: approvals list|approve|reject, mode, resume.",
)
def run(
    config: Path | None,
    duration: float | None,
    summary_json: Path | None,
    log_level: str,
    approve_interactive: bool,
) -> None:
    """Launch a node and run until SIGINT/SIGTERM or --duration.

    CONFIG is a YAML node config; without it the node runs on the embedded
    paper venue (config/paper.yaml). Exits 0 after a clean stop, 1 if the
    node's root supervisor gave up, 2 on a config error, 3 if a venue never
    connected (the summary's never_connected says why).
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        node_config = load_config(config)
    except ConfigError as exc:
        _exit_config_error(exc)
    # The config's logging: section (JSON lines or text, secrets masked); an
    # explicit --log-level other than the default wins over its level.
    configure_logging(
        node_config.logging,
        node=node_config.node.name,
        secrets=secret_values(node_config),
        level=None if log_level.upper() == "WARNING" else log_level,
        replace_all=True,
    )

    stop_requested = threading.Event()
    kill_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    def request_kill(signum: int, _frame: FrameType | None) -> None:
        kill_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, request_kill)
    try:
        node = _build_node(node_config, "embedded paper.yaml" if config is None else str(config))
    except ConfigError as exc:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _exit_config_error(exc)
    # Rich tables updated in place on a terminal; plain rounded lines in a pipe.
    display = StatusDisplay(node)
    try:
        node.start()
        click.echo(
            f"tradenode: node {node_config.node.name} running (Ctrl-C to stop; "
            f"kill -USR1 {os.getpid()} engages the kill switch)"
        )
        if node.observability.metrics_url is not None:
            click.echo(f"tradenode: metrics at {node.observability.metrics_url}")
        sys.stdout.flush()
        deadline = None if duration is None else time.monotonic() + duration
        next_status = time.monotonic() + node_config.status_interval
        console = ConsoleReader() if approve_interactive else None
        with display:
            while not stop_requested.is_set() and not node.system.is_terminated:
                for line in [] if console is None else console.lines():
                    run_console_line(node, line)
                if kill_requested.is_set():
                    kill_requested.clear()
                    report = node.kill_switch(flatten=True)
                    click.echo(f"tradenode: KILL SWITCH engaged: {report}")
                if time.monotonic() >= next_status:
                    display.show()
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
    display.final(summary)
    click.echo(f"tradenode: node {node_config.node.name} stopped ({summary['termination_reason']})")
    never = node.never_connected()
    summary["never_connected"] = never
    for venue_name, reason in never.items():
        click.echo(f"tradenode: venue {venue_name} never connected ({reason})", err=True)
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    if node.failed:
        sys.exit(EXIT_NODE_FAILED)
    sys.exit(EXIT_NEVER_CONNECTED if never else EXIT_OK)


main.add_command(approvals_group)
main.add_command(ctl)


def _exit_config_error(exc: ConfigError) -> NoReturn:
    click.echo(f"tradenode: config error: {exc}", err=True)
    sys.exit(EXIT_CONFIG)


def _build_node(node_config: NodeConfig, source: str) -> Node:
    """The node, or a ``ConfigError`` naming ``journal.path`` when its directory cannot be used.

    Building a node opens (creating it if needed) the journal directory and
    nothing else on disk, so an ``OSError`` here is the configured path's
    fault: a regular file in the way, a parent that is a file, no permission.
    The path itself is not printed: it may come from the environment.
    """
    try:
        return Node(node_config)
    except OSError as exc:
        if node_config.journal is None:
            raise
        path = Path(node_config.journal.path)
        reason = (
            "it is a file, not a directory"
            if path.exists() and not path.is_dir()
            else (exc.strerror or type(exc).__name__)
        )
        raise ConfigError(
            f"{source}: config key journal.path: cannot use it as the journal directory: {reason}",
            key="journal.path",
        ) from exc


class _VenueCommands(click.Group):
    """``tradenode venue <name>``: one command per local venue, from the entry points.

    Each local fake registers a click command under the ``tradenode.venue_commands``
    entry point group (the package's own in ``pyproject.toml``), so a new venue
    adds its command without touching this file. A command is imported only when
    it runs or its help is shown: ``tradenode run`` never loads an ASGI stack.
    """

    def _entry_points(self) -> dict[str, importlib.metadata.EntryPoint]:
        found = importlib.metadata.entry_points(group=VENUE_COMMANDS_GROUP)
        return {entry.name: entry for entry in found}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._entry_points())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self._entry_points().get(cmd_name)
        if entry is None:
            return None
        command = entry.load()
        if not isinstance(command, click.Command):
            raise click.ClickException(
                f"entry point {VENUE_COMMANDS_GROUP}:{cmd_name} is {command!r}, not a click command"
            )
        return command


VENUE_COMMANDS_GROUP = "tradenode.venue_commands"
"""The entry point group of ``tradenode venue`` commands: name -> a ``click.Command``."""


@main.group(cls=_VenueCommands)
def venue() -> None:
    """Local fake venues that speak the real wire protocols (for tests and rehearsals)."""


# -- tradenode journal ---------------------------------------------------------------------------

_JOURNAL_PATH = click.argument(
    "path", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="PATH"
)


@main.group("journal")
def journal_group() -> None:
    """Inspect a journal directory; never changes a byte of it, even while a node writes to it.

    Exit codes: 0 when the journal reads back sound, 1 when it is damaged
    (the message names the segment file and byte offset), 2 on usage errors.
    """


def _check_journal_directory(path: Path) -> None:
    logging.basicConfig(level=logging.WARNING, format="tradenode: %(levelname)s %(message)s")
    if not any(path.glob("segment-*.tnj")) and not any(path.glob("snapshot-*.tns")):
        raise click.UsageError(f"{path} holds no journal (no segment-*.tnj files)")


def _read_journal(path: Path) -> Any:
    """The journal in ``path`` opened read-only, or exit 1 (damaged) / 2 (not a journal)."""
    from .journal import Journal, JournalError  # noqa: PLC0415 - keep `run` light

    _check_journal_directory(path)
    try:
        return Journal.open_read_only(path)
    except JournalError as exc:
        click.echo(f"tradenode: journal error: {exc}", err=True)
        sys.exit(EXIT_NODE_FAILED)


@journal_group.command("show")
@_JOURNAL_PATH
@click.option(
    "--from",
    "from_seq",
    type=click.IntRange(min=1),
    default=None,
    metavar="SEQ",
    help="First sequence number to show [default: the oldest record kept].",
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=None, metavar="N", help="Show at most N records."
)
def journal_show(path: Path, from_seq: int | None, limit: int | None) -> None:
    """Print one line per record: sequence number, time (UTC), kind and contents."""
    from .actors._oms_inspect import render_all  # noqa: PLC0415
    from .journal import JournalError  # noqa: PLC0415

    with _read_journal(path) as journal:
        try:
            for line in render_all(journal, from_seq, limit):
                click.echo(line)
        except JournalError as exc:
            click.echo(f"tradenode: journal error: {exc}", err=True)
            sys.exit(EXIT_NODE_FAILED)


@journal_group.command("export")
@_JOURNAL_PATH
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "csv"]),
    required=True,
    help="jsonl: one JSON object per record; csv: one row per record.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write to FILE [default: standard output].",
)
def journal_export(path: Path, output_format: str, output: Path | None) -> None:
    """Export every record kept (oldest first) with its sequence number and decoded fields."""
    from .actors._oms_inspect import export  # noqa: PLC0415
    from .journal import JournalError  # noqa: PLC0415

    with _read_journal(path) as journal:
        try:
            if output is None:
                count = export(journal, sys.stdout, output_format)
            else:
                with output.open("w", encoding="utf-8", newline="") as file:
                    count = export(journal, file, output_format)
        except JournalError as exc:
            click.echo(f"tradenode: journal error: {exc}", err=True)
            sys.exit(EXIT_NODE_FAILED)
    if output is not None:
        click.echo(f"tradenode: exported {count} records to {output}", err=True)


@journal_group.command("verify")
@_JOURNAL_PATH
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
def journal_verify(path: Path, as_json: bool) -> None:
    """Check every checksum and snapshot and replay the entries into an order-manager state.

    Reports segments, records and the last sequence number, the snapshots,
    and a summary of the replayed state (orders, open orders, fills,
    positions). Exits 0 when sound, 1 with the segment and byte offset when
    damaged.
    """
    from .actors._oms_inspect import verify  # noqa: PLC0415
    from .journal import CorruptJournalError, JournalError  # noqa: PLC0415

    _check_journal_directory(path)
    try:
        result = verify(path)
    except JournalError as exc:
        if as_json:
            where = (
                {"segment": str(exc.segment), "offset": exc.offset}
                if isinstance(exc, CorruptJournalError)
                else {}
            )
            failure = {"directory": str(path), "sound": False, "error": str(exc), **where}
            click.echo(json.dumps(failure))
        else:
            click.echo(f"journal {path}: CORRUPT: {exc}")
        sys.exit(EXIT_NODE_FAILED)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.render())
    sys.exit(EXIT_OK if result.sound else EXIT_NODE_FAILED)


# -- tradenode drill -----------------------------------------------------------------------------


def _parse_seeds(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> list[int] | None:
    if value is None:
        return None
    first, sep, last = value.partition("-")
    try:
        low, high = int(first), int(last if sep else first)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected A-B, e.g. 1-20") from None
    if high < low:
        raise click.BadParameter(f"{value!r}: the range is empty")
    return list(range(low, high + 1))


@main.command()
@click.argument("venue_name", metavar="VENUE", type=click.Choice(["binance"]))
@click.option("--seed", type=int, default=None, help="The seed [default: a random one, printed].")
@click.option(
    "--seeds", callback=_parse_seeds, default=None, metavar="A-B", help="Run every seed A..B."
)
@click.option(
    "--incarnations",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Node incarnations per seed.",
)
@click.option(
    "--scenario",
    type=click.Choice(["random", "kills", "held-placement"]),
    default="random",
    show_default=True,
    help="random: kills, crash points, held placements, venue faults; kills: kills and "
    "crash points only; held-placement: a placement held past the node's death.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where configs, logs, journals and findings go (one seed-<S> directory per seed) "
    "[default: a new temporary directory, kept].",
)
def drill(  # noqa: PLR0917 - click passes every option by keyword
    venue_name: str,
    seed: int | None,
    seeds: list[int] | None,
    incarnations: int,
    scenario: str,
    workdir: Path | None,
) -> None:
    """Randomized exactly-once campaign against a local VENUE in another process (binance).

    Per seed: node incarnations (tradenode run, the example strategy, a
    journal) are killed at seeded moments and crash points while the venue
    injects faults; then settle runs, and the venue's books are compared
    with the journal: every fill journaled exactly once, one order per
    client order id, positions equal balance changes, open orders agree,
    the journal sound after every kill, no secret in any file. Prints the
    seed first, then one PASS/FAIL line per invariant (details in the
    workdir). Exits 0 when every invariant holds for every seed, 1 otherwise.
    """
    import random  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from .testing.campaign import VENUES, run_campaign  # noqa: PLC0415

    if seed is not None and seeds is not None:
        raise click.UsageError("give --seed or --seeds, not both")
    if seeds is not None:
        chosen = seeds
    else:
        chosen = [seed if seed is not None else random.SystemRandom().randrange(2**31)]

    def echo(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    root = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="tradenode-drill-"))
    failed = []
    for number in chosen:
        directory = root / f"seed-{number}" if len(chosen) > 1 or workdir is None else root
        summary = run_campaign(
            VENUES[venue_name](),
            seed=number,
            workdir=directory,
            incarnations=incarnations,
            scenario=scenario,
            echo=echo,
        )
        if not summary.passed:
            failed.append(f"{number} ({', '.join(summary.failed)})")
    if len(chosen) > 1:
        click.echo(
            f"tradenode drill: {len(chosen) - len(failed)} of {len(chosen)} seeds passed"
            + (f"; failed: {'; '.join(failed)}" if failed else "")
        )
    sys.exit(EXIT_NODE_FAILED if failed else EXIT_OK)
