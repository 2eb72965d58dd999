"""``tradenode venue okx``: the local OKX v5 account as a process of its own.

Meant for the ``tradenode.venue_commands`` entry point group, which is how
``tradenode venue`` finds a venue's command; the ASGI stack is imported only
when the command runs.
"""

from __future__ import annotations

from decimal import Decimal

import click

from ._serve_cli import (
    configure_logging,
    knob_help,
    listen_options,
    run_options,
    serve_until_signalled,
)

__all__ = ["okx"]


def _parse_balance(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Decimal] | None:
    if not values:
        return None
    balances: dict[str, Decimal] = {}
    for value in values:
        ccy, sep, amount = value.partition("=")
        try:
            number = Decimal(amount)
        except ArithmeticError:
            number = Decimal("NaN")
        if not sep or not ccy.strip() or not number.is_finite() or number < 0:
            raise click.BadParameter(f"{value!r}: expected CCY=AMOUNT, e.g. USDT=10000")
        balances[ccy.strip().upper()] = number
    return balances


@click.command(
    "okx",
    cls=knob_help(
        "._okx_server:OkxVenue",
        [
            ("state", "balances, orders, fills, submissions, calls, faults"),
            ("calls", "requests per endpoint so far"),
            ("faults", "request and event faults pending"),
        ],
    ),
)
@listen_options()
@click.option(
    "--api-key",
    default=None,
    help="The account's API key [default: tradenode.testing.venues.DEFAULT_OKX_API_KEY].",
)
@click.option(
    "--secret",
    default=None,
    envvar="TRADENODE_FAKE_OKX_SECRET",
    help="The API key's HMAC secret (or $TRADENODE_FAKE_OKX_SECRET) "
    "[default: tradenode.testing.venues.DEFAULT_OKX_SECRET]. Never printed.",
)
@click.option(
    "--passphrase",
    default=None,
    envvar="TRADENODE_FAKE_OKX_PASSPHRASE",
    help="The API key's passphrase (or $TRADENODE_FAKE_OKX_PASSPHRASE) "
    "[default: tradenode.testing.venues.DEFAULT_OKX_PASSPHRASE]. Never printed.",
)
@click.option(
    "--demo/--live",
    "demo",
    default=None,
    help="Accept only demo-trading requests (x-simulated-trading: 1), or only live ones "
    "[default: both].",
)
@click.option(
    "--balance",
    "balances",
    multiple=True,
    callback=_parse_balance,
    metavar="CCY=AMOUNT",
    help="A starting balance; repeat for several [default: USDT=1000000 BTC=10 ETH=100 SOL=1000].",
)
@click.option(
    "--rate-limits/--no-rate-limits",
    default=False,
    show_default=True,
    help="Enforce OKX's per-2 s limits (trade ops 60 per instId, REST and WS shared).",
)
@click.option(
    "--tls",
    is_flag=True,
    default=False,
    help="Serve HTTPS/WSS with a throwaway CA (its file is the JSON line's ca_file).",
)
@run_options
def okx(  # noqa: PLR0917 - click passes every option by keyword
    host: str,
    port: int,
    admin_port: int,
    api_key: str | None,
    secret: str | None,
    passphrase: str | None,
    demo: bool | None,
    balances: dict[str, Decimal] | None,
    rate_limits: bool,
    tls: bool,
    seed: int,
    tick_interval: float | None,
    log_level: str,
) -> None:
    """Serve a fake OKX v5 account (REST, public and private WebSockets) until SIGINT/SIGTERM.

    Prints one JSON line with the base URLs and the API key once it is
    ready: {"rest": ..., "ws_public": ..., "ws_private": ..., "admin": ...,
    "api_key": ...} (never the secret or the passphrase; with --tls also
    "ca_file"). Instruments are
    BTC-USDT, ETH-USDT and SOL-USDT; prices move on POST <admin>/step or
    /set_price (and every --tick-interval seconds if given). The admin knobs
    below are the Python methods of tradenode.testing.venues.OkxVenue, with
    the same names and keyword arguments. Exits 0 after a signal.
    """
    # Imported here so that the other commands never load the ASGI stack.
    from . import (  # noqa: PLC0415
        DEFAULT_OKX_API_KEY,
        DEFAULT_OKX_PASSPHRASE,
        DEFAULT_OKX_SECRET,
        OkxVenue,
    )

    configure_logging(log_level)
    fake = OkxVenue(
        balances=balances,
        api_key=api_key or DEFAULT_OKX_API_KEY,
        secret=secret or DEFAULT_OKX_SECRET,
        passphrase=passphrase or DEFAULT_OKX_PASSPHRASE,
        demo=demo,
        seed=seed,
        host=host,
        port=port,
        admin_port=admin_port,
        tick_interval=tick_interval,
        rate_limits=rate_limits,
        tls=tls,
    )
    serve_until_signalled(
        fake,
        lambda: {
            "rest": fake.rest_url,
            "ws_public": fake.ws_public_url,
            "ws_private": fake.ws_private_url,
            "admin": fake.admin_url,
            "api_key": fake.api_key,
            **({"ca_file": fake.ca_file} if fake.ca_file is not None else {}),
        },
    )
