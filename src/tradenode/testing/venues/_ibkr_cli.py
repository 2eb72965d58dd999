"""``tradenode venue ibkr``: the local TWS as a process of its own.

Meant for the ``tradenode.venue_commands`` entry point group, which is how
``tradenode venue`` finds a venue's command; the server is imported only
when the command runs.
"""

from __future__ import annotations

import click

from ._serve_cli import configure_logging, serve_until_signalled

__all__ = ["ibkr"]


class _IbkrVenueCommand(click.Command):
    """``venue ibkr``: its help ends with the admin knobs, from the venue's own table."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Imported only to render the help: the other commands never load the server.
        from ._ibkr_server import KNOBS  # noqa: PLC0415

        with formatter.section("Admin knobs (POST <admin>/<knob>, JSON object of arguments)"):
            formatter.write_dl([(knob.signature, knob.summary) for knob in KNOBS.values()])
        with formatter.section("Admin pages (GET <admin>/<page>)"):
            formatter.write_dl(
                [
                    ("state", "positions, orders, fills, submissions, account values, faults"),
                    ("faults", "message and request faults pending"),
                    ("knobs", "these knobs with their arguments, as JSON"),
                ]
            )
        super().format_epilog(ctx, formatter)


@click.command("ibkr", cls=_IbkrVenueCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="TWS API port (a paper TWS uses 7497) [default: a free one].",
)
@click.option(
    "--admin-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port of the admin endpoint [default: a free one].",
)
@click.option(
    "--account",
    default=None,
    help="The account id [default: tradenode.testing.venues.DEFAULT_IBKR_ACCOUNT].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
@click.option(
    "--tick-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds between automatic price steps [default: prices move only when told].",
)
@click.option("--log-level", default="WARNING", show_default=True, help="Python logging level.")
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
