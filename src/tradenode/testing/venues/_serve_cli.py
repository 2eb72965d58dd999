"""What every ``tradenode venue <name>`` command does once its venue is built.

Start it, print one JSON line saying where it listens, serve until SIGINT or
SIGTERM, stop it, exit 0: the contract tests and rehearsal scripts rely on
(``tests/test_cli_venue.py``, ``tests/test_oanda_venue.py``).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import NoReturn, Protocol

import click

__all__ = ["configure_logging", "serve_until_signalled"]

EXIT_OK = 0


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
