"""``tradenode venue ibkr``: the local TWS as a process of its own.

Meant for the ``tradenode.venue_commands`` entry point group, which is how
``tradenode venue`` finds a venue's command; the server is imported only
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

__all__ = ["ibkr"]


@click.command(
    "ibkr",
    cls=knob_help(
        "._ibkr_server:IbkrVenue",
        [
            ("state", "positions, orders, fills, submissions, account values, faults"),
            ("faults", "message and request faults pending"),
        ],
    ),
)
@listen_options("TWS API port (a paper TWS uses 7497) [default: a free one].")
@click.option(
    "--account",
    default=None,
    help="The account id [default: tradenode.testing.venues.DEFAULT_IBKR_ACCOUNT].",
)
@run_options
def ibkr(  # noqa: PLR0917 - click passes every option by keyword
    host: str,
    port: int,
    admin_port: int,
    account: str | None,
    seed: int,
    tick_interval: float | None,
    log_level: str,
) -> None:
    """Serve a local TWS (the TWS API socket protocol) until SIGINT/SIGTERM.

    Prints one JSON line once it listens: {"host": ..., "port": ...,
    "admin": ..., "account": ...}; point ib_async/ib_insync/IB's API at
    host and port with any client id. Contracts: AAPL and MSFT (STK,
    SMART/NASDAQ), EUR.USD (CASH, IDEALPRO), ES (FUT, CME, multiplier 50),
    an AAPL 200 call (OPT, multiplier 100). Prices move on POST
    <admin>/set_price or /step (and every --tick-interval seconds if
    given). The admin knobs below are the Python methods of
    tradenode.testing.venues.IbkrVenue, with the same names and keyword
    arguments. Exits 0 after a signal.
    """
    # Imported here so that the other commands never load the server.
    from . import DEFAULT_IBKR_ACCOUNT, IbkrVenue  # noqa: PLC0415

    configure_logging(log_level)
    try:
        fake = IbkrVenue(
            account=account or DEFAULT_IBKR_ACCOUNT,
            seed=seed,
            host=host,
            port=port,
            admin_port=admin_port,
            tick_interval=tick_interval,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--account") from None
    serve_until_signalled(
        fake,
        lambda: {
            "host": fake.host,
            "port": str(fake.port),
            "admin": fake.admin_url,
            "account": fake.account,
        },
    )
