"""``tradenode venue alpaca``: the local Alpaca paper account as a process of its own.

Meant for the ``tradenode.venue_commands`` entry point group, which is how
``tradenode venue`` finds a venue's command; the ASGI stack is imported only
when the command runs.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click

from ._serve_cli import (
    configure_logging,
    knob_help,
    listen_options,
    run_options,
    serve_until_signalled,
)

__all__ = ["alpaca"]


def _parse_cash(_ctx: click.Context, _param: click.Parameter, value: str) -> Decimal:
    try:
        cash = Decimal(value)
    except InvalidOperation:
        cash = Decimal("NaN")
    if not cash.is_finite() or cash < 0:
        raise click.BadParameter(f"{value!r}: expected a non-negative amount of USD, e.g. 100000")
    return cash


@click.command(
    "alpaca",
    cls=knob_help(
        "._alpaca_server:AlpacaVenue",
        [
            ("state", "session, balances, positions, orders, fills, submissions, calls, faults"),
            ("calls", "REST requests per endpoint so far"),
            ("faults", "request and event faults pending"),
        ],
    ),
)
@listen_options()
@click.option(
    "--api-key",
    default=None,
    help="The account's API key id [default: tradenode.testing.venues.DEFAULT_ALPACA_API_KEY].",
)
@click.option(
    "--secret",
    default=None,
    envvar="TRADENODE_FAKE_ALPACA_SECRET",
    help="The API secret key (or $TRADENODE_FAKE_ALPACA_SECRET) "
    "[default: tradenode.testing.venues.DEFAULT_ALPACA_SECRET]. Never printed.",
)
@click.option(
    "--cash",
    default="100000",
    show_default=True,
    callback=_parse_cash,
    help="Starting cash in USD.",
)
@click.option(
    "--market-open/--market-closed",
    "market_open",
    default=None,
    help="Force the regular session open, or the market closed "
    "[default: by the clock, New York sessions].",
)
@click.option(
    "--text-frames",
    is_flag=True,
    default=False,
    help="Send trade_updates in text frames (live) instead of binary frames (paper).",
)
@click.option(
    "--rate-limits/--no-rate-limits",
    default=False,
    show_default=True,
    help="Answer 429 past Alpaca's 200 requests per minute.",
)
@run_options
def alpaca(  # noqa: PLR0917 - click passes every option by keyword
    host: str,
    port: int,
    admin_port: int,
    api_key: str | None,
    secret: str | None,
    cash: Decimal,
    market_open: bool | None,
    text_frames: bool,
    rate_limits: bool,
    seed: int,
    tick_interval: float | None,
    log_level: str,
) -> None:
    """Serve a fake Alpaca paper account (Trading API v2, trade_updates, stock market data)
    until SIGINT/SIGTERM.

    Prints one JSON line with the URLs and the API key id once it is ready:
    {"rest": ..., "stream": ..., "data_stream": ..., "admin": ..., "api_key": ...}
    (never the secret). "rest" is what alpaca-py's TradingClient(url_override=...)
    takes, "stream" TradingStream's, "data_stream" StockDataStream's (the IEX feed;
    /v2/sip, /v2/delayed_sip and /v2/test are served too). Symbols are AAPL, MSFT
    and SPY (fractionable) and SIRI (whole shares); prices move on POST
    <admin>/step or /set_price (and every --tick-interval seconds if given). The
    admin knobs below are the Python methods of
    tradenode.testing.venues.AlpacaVenue, with the same names and keyword
    arguments. Exits 0 after a signal.
    """
    # Imported here so that the other commands never load the ASGI stack.
    from . import DEFAULT_ALPACA_API_KEY, DEFAULT_ALPACA_SECRET, AlpacaVenue  # noqa: PLC0415

    configure_logging(log_level)
    fake = AlpacaVenue(
        cash=cash,
        api_key=api_key or DEFAULT_ALPACA_API_KEY,
        secret=secret or DEFAULT_ALPACA_SECRET,
        seed=seed,
        host=host,
        port=port,
        admin_port=admin_port,
        tick_interval=tick_interval,
        binary_frames=not text_frames,
        rate_limits=rate_limits,
    )
    if market_open is not None:
        fake.set_market_open(market_open)
    serve_until_signalled(
        fake,
        lambda: {
            "rest": fake.rest_url,
            "stream": fake.stream_url,
            "data_stream": fake.data_stream_url("iex"),
            "admin": fake.admin_url,
            "api_key": fake.api_key,
        },
    )
