"""``tradenode venue coinbase``: the local Coinbase Advanced Trade venue as a process of its own.

Registered under the ``tradenode.venue_commands`` entry point group, which is
how ``tradenode venue`` finds it; the ASGI stack is imported only when the
command runs. A key pair it generates is written to a file (the key file
Coinbase's console downloads, which ``RESTClient(key_file=...)`` reads) and
only the file's path is printed, never the private key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from ._serve_cli import (
    configure_logging,
    knob_help,
    listen_options,
    run_options,
    serve_until_signalled,
)

__all__ = ["coinbase"]


def _parse_public_keys(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, bytes] | None:
    """``KEY_NAME=PEM_PATH`` pairs: each public key file read now (a usage error if unreadable)."""
    if not values:
        return None
    keys: dict[str, bytes] = {}
    for value in values:
        name, sep, path = value.rpartition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{value!r}: expected KEY_NAME=PEM_PATH")
        try:
            keys[name] = Path(path).read_bytes()
        except OSError as error:
            raise click.BadParameter(f"{path}: {error.strerror or error}") from None
    return keys


def _write_key_file(path: Path | None, content: str) -> Path:
    """Write the key JSON readable by its owner only; a fresh temporary file without ``path``."""
    if path is None:
        descriptor, name = tempfile.mkstemp(prefix="tradenode-coinbase-key-", suffix=".json")
        os.close(descriptor)
        path = Path(name)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(content)
    return path


@click.command(
    "coinbase",
    cls=knob_help(
        "._coinbase_server:CoinbaseVenue",
        [
            ("state", "balances, orders, fills, submissions, calls, faults, streams"),
            ("calls", "requests per endpoint so far"),
            ("faults", "request and event faults pending"),
        ],
    ),
)
@listen_options()
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    callback=_parse_public_keys,
    metavar="KEY_NAME=PEM_PATH",
    help="Accept JWTs of this CDP key, whose public key (EC P-256 or Ed25519 PEM) is in "
    "PEM_PATH (repeatable). Without it the venue generates a key pair.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Where to write the generated key pair's JSON ({name, privateKey}, mode 0600) "
    "[default: a new temporary file]. Its path is printed, never its content.",
)
@click.option("--tls", is_flag=True, help="Serve HTTPS/WSS with a throwaway CA (its file printed).")
@click.option(
    "--heartbeat-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Seconds between heartbeats-channel messages.",
)
@run_options
def coinbase(  # noqa: PLR0917 - click passes every option by keyword
    host: str,
    port: int,
    admin_port: int,
    public_keys: dict[str, bytes] | None,
    key_file: Path | None,
    tls: bool,
    seed: int,
    heartbeat_interval: float,
    tick_interval: float | None,
    log_level: str,
) -> None:
    """Serve a local Coinbase Advanced Trade account (REST and WebSockets) until SIGINT/SIGTERM.

    Prints one JSON line once it is ready: {"rest": ..., "ws": ..., "ws_user": ...,
    "admin": ...} plus "key_file" (the generated key's JSON
    file) when no --public-key is given, and "ca_file" with --tls. Products are
    BTC-USD and ETH-USD; prices move on POST <admin>/step or /set_price (and
    every --tick-interval seconds if given). The admin knobs below are the
    Python methods of tradenode.testing.venues.CoinbaseVenue, with the same
    names and keyword arguments. Exits 0 after a signal.
    """
    # Imported here so that the other commands never load the ASGI stack.
    from . import CoinbaseVenue  # noqa: PLC0415

    configure_logging(log_level)
    try:
        fake = CoinbaseVenue(
            api_keys=public_keys,
            seed=seed,
            host=host,
            port=port,
            admin_port=admin_port,
            tls=tls,
            heartbeat_interval=heartbeat_interval,
            tick_interval=tick_interval,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--public-key") from None
    written = None
    if fake.key is not None:
        try:
            written = _write_key_file(key_file, fake.key.to_json())
        except OSError as error:
            raise click.BadParameter(str(error), param_hint="--key-file") from None

    def urls() -> dict[str, str]:
        answer: dict[str, str] = {
            "rest": fake.rest_url,
            "ws": fake.ws_url,
            "ws_user": fake.ws_user_url,
            "admin": fake.admin_url,
        }
        if written is not None:
            answer["key_file"] = str(written)
        if fake.ca_file is not None:
            answer["ca_file"] = fake.ca_file
        return answer

    serve_until_signalled(fake, urls)
