"""What every ``tradenode venue <name>`` command shares.

The options every local venue takes (:func:`listen_options`: where it
listens; :func:`run_options`: seed, price ticks, logging), a help text that
ends with the venue's admin knobs read from its own table
(:func:`knob_help`), and what it does once its venue is built
(:func:`serve_until_signalled`): start it, print one JSON line saying where it
listens, serve until SIGINT or SIGTERM, stop it, exit 0, the contract tests
and rehearsal scripts rely on (``tests/test_cli_venue.py`` and each venue's
tests).
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any, NoReturn, Protocol, TypeVar

import click

__all__ = [
    "configure_logging",
    "knob_help",
    "listen_options",
    "run_options",
    "serve_until_signalled",
]

EXIT_OK = 0
_F = TypeVar("_F", bound=Callable[..., Any])

_KNOBS_PAGE = ("knobs", "these knobs with their arguments, as JSON")


def knob_help(
    venue_class: str,
    pages: Sequence[tuple[str, str]],
    footer: Callable[[], str] | None = None,
) -> type[click.Command]:
    """A command class whose help ends with the venue's admin knobs and pages.

    The knobs come from the ``KNOBS`` of ``venue_class`` (``"._okx_server:OkxVenue"``,
    relative to this package), imported only to render the help, so the other
    commands never load the venue's server stack; ``footer()`` is a last paragraph (called
    only to render the help too).
    """

    class VenueCommand(click.Command):
        def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            module, _, name = venue_class.partition(":")
            knobs = getattr(importlib.import_module(module, __package__), name).KNOBS
            with formatter.section("Admin knobs (POST <admin>/<knob>, JSON object of arguments)"):
                formatter.write_dl([(knob.signature, knob.summary) for knob in knobs.values()])
            with formatter.section("Admin pages (GET <admin>/<page>)"):
                formatter.write_dl([*pages, _KNOBS_PAGE])
            if footer is not None:
                formatter.write_paragraph()
                formatter.write_text(footer())
            super().format_epilog(ctx, formatter)

    return VenueCommand


def listen_options(port_help: str = "Port [default: a free one].") -> Callable[[_F], _F]:
    """``--host``, ``--port`` and ``--admin-port``."""

    def apply(command: _F) -> _F:
        for option in reversed(
            (
                click.option(
                    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
                ),
                click.option("--port", type=click.IntRange(0, 65535), default=0, help=port_help),
                click.option(
                    "--admin-port",
                    type=click.IntRange(0, 65535),
                    default=0,
                    help="Port of the admin endpoint [default: a free one].",
                ),
            )
        ):
            command = option(command)
        return command

    return apply


def run_options(command: _F) -> _F:
    """``--seed``, ``--tick-interval`` and ``--log-level``."""
    for option in reversed(
        (
            click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed."),
            click.option(
                "--tick-interval",
                type=click.FloatRange(min=0, min_open=True),
                default=None,
                help="Seconds between automatic price steps [default: prices move only when told].",
            ),
            click.option(
                "--log-level", default="WARNING", show_default=True, help="Python logging level."
            ),
        )
    ):
        command = option(command)
    return command


class Servable(Protocol):
    """A local venue handle: ``start()`` serves on loopback, ``stop()`` ends it."""

    def start(self) -> object: ...

    def stop(self) -> None: ...


def configure_logging(log_level: str) -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def serve_until_signalled(fake: Servable, urls: Callable[[], Mapping[str, str]]) -> NoReturn:
    """Start ``fake``, print ``urls()`` as one JSON line, serve until a signal, exit 0.

    The signal handlers only set an event (the wait wakes every half second to
    see it), and the previous handlers come back whatever happens.
    """
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        fake.start()
        click.echo(json.dumps(dict(urls())))
        sys.stdout.flush()
        while not stop_requested.wait(0.5):
            pass
    finally:
        fake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.exit(EXIT_OK)
