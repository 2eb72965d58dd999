"""``tradenode venue oanda``: the local OANDA v20 account as a process of its own.

Meant for the ``tradenode.venue_commands`` entry point group, which is how
``tradenode venue`` finds a venue's command; the ASGI stack is imported only
when the command runs.
"""

from __future__ import annotations

import click

from ._serve_cli import (
    configure_logging,
    knob_help,
    listen_options,
    run_options,
    serve_until_signalled,
)

__all__ = ["oanda"]


@click.command(
    "oanda",
    cls=knob_help(
        "._oanda_server:OandaVenue",
        [
            ("state", "balance, positions, orders, submissions, calls, faults, streams"),
            ("calls", "requests per endpoint so far"),
            ("faults", "request and stream faults pending"),
        ],
    ),
)
@listen_options()
@click.option(
    "--account",
    default=None,
    help="The account id [default: tradenode.testing.venues.DEFAULT_OANDA_ACCOUNT_ID].",
)
@click.option(
    "--token",
    default=None,
    envvar="TRADENODE_FAKE_OANDA_TOKEN",
    help="The bearer token accepted (or $TRADENODE_FAKE_OANDA_TOKEN) "
    "[default: tradenode.testing.venues.DEFAULT_OANDA_TOKEN]. Never printed.",
)
@click.option(
    "--heartbeat-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds between stream heartbeats.",
)
@run_options
def oanda(  # noqa: PLR0917 - click passes every option by keyword
    host: str,
    port: int,
    admin_port: int,
    account: str | None,
    token: str | None,
    seed: int,
    heartbeat_interval: float,
    tick_interval: float | None,
    log_level: str,
) -> None:
    """Serve a fake OANDA v20 account (REST and both streams) until SIGINT/SIGTERM.

    Prints one JSON line with the base URLs and the account once it is
    ready: {"rest": ..., "stream": ..., "admin": ..., "account": ...}.
    Instruments are EUR_USD, USD_JPY and GBP_USD; prices move on POST
    <admin>/step or /set_price (and every --tick-interval seconds if
    given). The admin knobs below are the Python methods of
    tradenode.testing.venues.OandaVenue, with the same names and keyword
    arguments. Exits 0 after a signal.
    """
    # Imported here so that the other commands never load the ASGI stack.
    from . import DEFAULT_OANDA_ACCOUNT_ID, DEFAULT_OANDA_TOKEN, OandaVenue  # noqa: PLC0415

    configure_logging(log_level)
    try:
        fake = OandaVenue(
            account_id=account or DEFAULT_OANDA_ACCOUNT_ID,
            token=token or DEFAULT_OANDA_TOKEN,
            seed=seed,
            host=host,
            port=port,
            admin_port=admin_port,
            heartbeat_interval=heartbeat_interval,
            tick_interval=tick_interval,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--account") from None
    serve_until_signalled(
        fake,
        lambda: {
            "rest": fake.rest_url,
            "stream": fake.stream_url,
            "admin": fake.admin_url,
            "account": fake.account_id,
        },
    )
