"""``tradenode venue binance``: the local Binance Spot venue as a process of its own.

Registered under the ``tradenode.venue_commands`` entry point group, which is
how ``tradenode venue`` finds it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

from ._serve_cli import (
    configure_logging,
    knob_help,
    listen_options,
    run_options,
    serve_until_signalled,
)

__all__ = ["binance"]


def _parse_balance(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Decimal] | None:
    if not values:
        return None
    balances: dict[str, Decimal] = {}
    for value in values:
        asset, sep, amount = value.partition("=")
        try:
            number = Decimal(amount)
        except ArithmeticError:
            number = Decimal("NaN")
        if not sep or not asset or not number.is_finite() or number < 0:
            raise click.BadParameter(f"{value!r}: expected ASSET=AMOUNT, e.g. USDT=10000")
        balances[asset.strip().upper()] = number
    return balances


def _parse_ed25519_keys(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, bytes] | None:
    """``API_KEY=PEM_PATH`` pairs: each public key file read now (a usage error if unreadable)."""
    if not values:
        return None
    keys: dict[str, bytes] = {}
    for value in values:
        api_key, sep, path = value.partition("=")
        if not sep or not api_key or not path:
            raise click.BadParameter(f"{value!r}: expected API_KEY=PEM_PATH")
        try:
            keys[api_key] = Path(path).read_bytes()
        except OSError as error:
            raise click.BadParameter(f"{path}: {error.strerror or error}") from None
    return keys


def _deprecated_aliases() -> str:
    # Imported only to render the help: the other commands never load the ASGI stack.
    from ._binance_server import DEPRECATED_ALIASES  # noqa: PLC0415

    return "Deprecated knob aliases (still served, with a warning): " + ", ".join(
        f"{old} -> {new}" for old, new in DEPRECATED_ALIASES.items()
    )


@click.command(
    "binance",
    cls=knob_help(
        "._binance_server:BinanceVenue",
        [
            ("state", "orders, trades, balances, submissions, calls, pending faults, up"),
            ("calls", "requests per endpoint so far"),
            ("faults", "request and event faults pending, requests held right now"),
        ],
        _deprecated_aliases,
    ),
)
@listen_options()
@click.option(
    "--api-key",
    default=None,
    help="The account's API key [default: tradenode-fake-binance-key].",
)
@click.option(
    "--api-secret",
    default=None,
    envvar="TRADENODE_FAKE_BINANCE_SECRET",
    help="The account's HMAC secret (or $TRADENODE_FAKE_BINANCE_SECRET) "
    "[default: tradenode.testing.venues.DEFAULT_API_SECRET]. Never printed.",
)
@click.option(
    "--ed25519-key",
    "ed25519_keys",
    multiple=True,
    callback=_parse_ed25519_keys,
    metavar="API_KEY=PEM_PATH",
    help="Register an Ed25519 API key of the account by its public key (PEM file); it signs "
    "with Ed25519 and may session.logon on the WebSocket API. Repeat for several.",
)
@click.option(
    "--balance",
    "balances",
    multiple=True,
    callback=_parse_balance,
    metavar="ASSET=AMOUNT",
    help="A starting balance; repeat for several [default: USDT=1000000 BTC=10 ETH=100 SOL=1000].",
)
@click.option(
    "--ban-seconds",
    type=click.IntRange(min=1),
    default=120,
    show_default=True,
    help="How long a client that ignores a 429's Retry-After is banned (418).",
)
@run_options
def binance(  # noqa: PLR0917 - click passes every option by keyword
    host: str,
    port: int,
    admin_port: int,
    api_key: str | None,
    api_secret: str | None,
    ed25519_keys: dict[str, bytes] | None,
    balances: dict[str, Decimal] | None,
    seed: int,
    tick_interval: float,
    ban_seconds: int,
    log_level: str,
) -> None:
    """Serve a fake Binance Spot (REST, WebSocket API, streams) until SIGINT/SIGTERM.

    Prints one JSON line with the base URLs once it is ready:
    {"rest": ..., "ws_api": ..., "stream": ..., "admin": ...}. Instruments
    are BTCUSDT, ETHUSDT and SOLUSDT; prices step every --tick-interval
    seconds and on POST <admin>/step or /set_price. The admin knobs below
    are the Python methods of tradenode.testing.venues.BinanceVenue, with
    the same names and keyword arguments. Exits 0 after a signal.
    """
    # Imported here so that the other commands never load the ASGI stack.
    from . import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceVenue  # noqa: PLC0415

    configure_logging(log_level)
    try:
        fake = BinanceVenue(
            balances=balances,
            api_key=api_key or DEFAULT_API_KEY,
            api_secret=api_secret or DEFAULT_API_SECRET,
            seed=seed,
            host=host,
            port=port,
            admin_port=admin_port,
            tick_interval=tick_interval,
            ban_seconds=ban_seconds,
            ed25519_public_keys=ed25519_keys,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--ed25519-key") from None
    serve_until_signalled(
        fake,
        lambda: {
            "rest": fake.rest_url,
            "ws_api": fake.ws_api_url,
            "stream": fake.stream_url,
            "admin": fake.admin_url,
        },
    )
