"""``tradenode run``'s status view: figures at the instrument's precision, states in colour,
plain lines (no ANSI) when the output is not a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

# The terminal view is the CLI's own, not a public API: its module is private.
from tradenode._terminal import PrecisionMap, plain_status, render_status, terminal_view
from tradenode.messages import OrderFilled, OrderRejected, OrderType, Side

from ._node_helpers import Harness, running_node

TICK = Decimal("0.01")  # the paper venue's BTCUSDT tick
LOT = Decimal("0.0001")  # and its lot


def _text(renderable: Any, *, width: int = 160, colour: bool = False) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        color_system="truecolor" if colour else None,
        force_terminal=colour,
        legacy_windows=False,
    )
    console.print(renderable)
    return out.getvalue()


def _buy(h: Harness, quantity: str) -> None:
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal(quantity), venue="paper"))
    h.wait_for(OrderFilled, coid)


@pytest.fixture(scope="module")
def traded() -> Iterator[tuple[Harness, dict[str, Any]]]:
    """A paper node that bought BTCUSDT at two prices: an average of many digits."""
    with running_node() as h:
        h.strategy()
        venue: Any = h.node.venues["paper"]
        _buy(h, "0.0003")
        first = venue.quote("BTCUSDT").last
        while venue.quote("BTCUSDT").last == first:
            venue.step("BTCUSDT")
        _buy(h, "0.0004")
        h.sync()
        yield h, terminal_view(h.node)


def _position(view: dict[str, Any]) -> dict[str, Any]:
    (position,) = [p for p in view["positions"] if p["symbol"] == "BTCUSDT"]
    return position


def test_the_average_price_shows_at_the_tick_never_its_thirty_digits(
    traded: tuple[Harness, dict[str, Any]],
) -> None:
    h, view = traded
    raw = _position(view)["avg_price"]
    assert len(raw.partition(".")[2]) > 2, raw  # the exact average has more places than a tick
    rounded = f"{Decimal(raw).quantize(TICK)}"
    text = _text(render_status(view, PrecisionMap.from_node(h.node), width=160))
    assert rounded in text
    assert raw not in text
    assert "0.0007" in text  # the quantity at the lot's 4 places
    # Every figure of the fills and orders: prices at 2 places, no raw commission.
    for fill in view["recent_fills"]:
        assert f"{Decimal(fill['price']).quantize(TICK)}" in text
        assert fill["commission"] not in text
        assert f"{Decimal(fill['commission']).quantize(TICK)}" in text
    assert len(view["orders"]) == 2 and len(view["recent_fills"]) == 2


def test_plain_lines_carry_the_same_rounded_figures(
    traded: tuple[Harness, dict[str, Any]],
) -> None:
    h, view = traded
    lines = plain_status(view, PrecisionMap.from_node(h.node))
    position = _position(view)
    expected = f"avg={Decimal(position['avg_price']).quantize(TICK)}"
    assert f"  paper:BTCUSDT qty=0.0007 {expected} rpnl=0.00 upnl=" in "\n".join(lines)
    assert any(line.startswith("  order ") and " FILLED " in line for line in lines)
    assert "testnode [running, restarts=0]" in lines


def _coloured(ansi: str, word: str, text: str) -> bool:
    """``word`` drawn in SGR colour ``ansi`` (a table cell pads it inside the style)."""
    return re.search(rf"\x1b\[{ansi}m{word} *\x1b\[0m", text) is not None


def test_a_state_is_coloured(traded: tuple[Harness, dict[str, Any]]) -> None:
    h, view = traded
    precision = PrecisionMap.from_node(h.node)
    coloured = _text(render_status(view, precision, width=160), colour=True)
    assert _coloured("32", "FILLED", coloured)  # green
    assert _coloured("32", "closed", coloured)  # a closed breaker: green
    assert not _coloured("31", "closed", coloured)
    tripped = {**view, "breakers": {**view["breakers"], "paper": {"state": "open"}}}
    assert _coloured("31", "open", _text(render_status(tripped, precision), colour=True))  # red
    half = {**view, "breakers": {**view["breakers"], "paper": {"state": "half_open"}}}
    assert _coloured("33", "half_open", _text(render_status(half, precision), colour=True))
    # Without a colour system: no escape at all.
    assert "\x1b[" not in _text(render_status(view, precision, width=160))


def test_a_narrow_view_drops_the_ids_not_the_figures(
    traded: tuple[Harness, dict[str, Any]],
) -> None:
    h, view = traded
    precision = PrecisionMap.from_node(h.node)
    narrow = _text(render_status(view, precision, width=80), width=80)
    assert view["recent_fills"][0]["execution_id"] not in narrow
    assert f"{Decimal(_position(view)['avg_price']).quantize(TICK)}" in narrow


def test_unknown_instruments_show_money_at_two_places_and_quantities_as_given() -> None:
    precision = PrecisionMap()
    assert precision.price("v", "XYZ", "101.23456") == "101.23"
    assert precision.money(Decimal("-0.125")) == "-0.12"  # half-even
    assert precision.quantity("v", "XYZ", "1.50000") == "1.5"
    assert precision.quantity("v", "XYZ", "0.123456789123") == "0.12345679"
    assert precision.price("v", "XYZ", None) == "-"
    assert precision.price("v", "XYZ", "not a number") == "not a number"


def test_risk_instruments_give_the_tick_and_lot_of_other_symbols() -> None:
    extra = (
        "risk:\n  instruments:\n"
        "    EURUSD: {tick_size: '0.00001', lot_size: '1'}\n"
        "    BTCUSDT: {tick_size: '0.1', lot_size: '0.001'}\n"
    )
    with running_node(extra) as h:
        configured = PrecisionMap.from_node(h.node)
        # What the paper venues publish in their status (their simulator's filters).
        precision = configured.learn(h.node.status())
    assert configured.price("paper", "BTCUSDT", "50000.126") == "50000.1"
    assert precision.price("oanda", "EURUSD", "1.0812345678") == "1.08123"
    assert precision.quantity("oanda", "EURUSD", "1000.0") == "1000"
    # The paper venue's own BTCUSDT filters come first; elsewhere the risk rules.
    assert precision.price("paper", "BTCUSDT", "50000.126") == "50000.13"
    assert precision.price("binance", "BTCUSDT", "50000.126") == "50000.1"


def test_tradenode_run_piped_prints_plain_rounded_lines(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradenode",
            "run",
            "--duration",
            "2",
            "--summary-json",
            str(summary),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.returncode == 0, process.stderr
    out = process.stdout
    assert "\x1b" not in out
    assert "--- paper-node final summary ---" in out
    data = json.loads(summary.read_text())
    assert data["fills"] > 0 and data["positions"]
    precision = {
        "BTCUSDT": ("0.01", "0.0001"),
        "ETHUSDT": ("0.01", "0.001"),
        "SOLUSDT": ("0.01", "0.01"),
    }
    final = out[out.index("final summary") :]
    for position in data["positions"]:
        tick, lot = precision[position["symbol"]]
        qty = Decimal(position["quantity"]).quantize(Decimal(lot))
        avg = Decimal(position["avg_price"]).quantize(Decimal(tick))
        assert f"paper:{position['symbol']} qty={qty} avg={avg} " in final
    for figure in re.findall(r"(?:avg|price|pnl)=(-?\d+\.\d+)", out):
        assert len(figure.partition(".")[2]) == 2, figure


def test_tradenode_run_on_a_terminal_draws_coloured_tables(tmp_path: Path) -> None:
    """Under a pseudo-terminal the view is rich's: colour codes, box-drawn tables,
    and the same rounded figures in the final summary."""
    summary = tmp_path / "summary.json"
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradenode",
            "run",
            "--duration",
            "2",
            "--summary-json",
            str(summary),
        ],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        if not select.select([leader], [], [], 60)[0]:  # a hung child fails, never hangs
            process.kill()
            pytest.fail("tradenode run wrote nothing for 60 s")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    out = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in out and "┃" in out  # colour and box drawing: rich, not the plain lines
    final = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out[out.index("final summary") :])
    data = json.loads(summary.read_text())
    assert data["positions"]
    for position in data["positions"]:
        avg = Decimal(position["avg_price"]).quantize(TICK)
        assert re.search(rf"│ paper +│ {position['symbol']} .*│ +{re.escape(str(avg))} │", final), (
            final
        )


def test_refused_orders_show_as_a_red_count() -> None:
    with running_node() as h:
        h.strategy()
        # 0.01 ETH at 100.00 is under the paper venue's 5 USDT minimum notional.
        coid = h.do(
            lambda ctx: ctx.submit_order(
                "ETHUSDT",
                Side.BUY,
                Decimal("0.01"),
                order_type=OrderType.LIMIT,
                price=Decimal("100.00"),
                venue="paper",
            )
        )
        h.wait_for(OrderRejected, coid)
        h.sync()
        view = terminal_view(h.node)
        coloured = _text(render_status(view, PrecisionMap.from_node(h.node)), colour=True)
    assert view["rejections"] == 1
    assert "rejections \x1b[31m1\x1b[0m" in coloured
    assert "denials 0" in coloured
