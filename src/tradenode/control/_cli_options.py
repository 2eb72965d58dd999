"""Command-line options shared by the commands that call a node's control API
(``tradenode ctl``, ``tradenode approvals``): click only, so a command that reaches
the API on one path alone imports httpx only on that path."""

from __future__ import annotations

import click

__all__ = ["cacert_option"]

cacert_option = click.option(
    "--cacert",
    "ca_file",
    type=click.Path(dir_okay=False),
    envvar="TRADENODE_CACERT",
    help="A CA file (PEM) to verify an https node's certificate with (e.g. its own "
    "self-signed certificate).",
)
"""``--cacert`` (or ``TRADENODE_CACERT``) as ``ca_file``: see ``ControlClient``."""
