"""The local TWS (``IbkrVenue``) against IB's own clients, unchanged, over loopback.

ib_async (server version 178) and ib_insync (176) connect to it as to a
paper TWS; a small raw-socket client written here (framing by hand, no
venue code) checks the bytes where a client library would hide them:
handshake, duplicate execDetails, the order of messages under a fault.
No sleeps: ib_async tests wait on the client's own updates until a
condition holds (``waitOnUpdate``), raw tests read frames until the one
they expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import ib_async
import ib_insync
import pytest
from ibapi.client import EClient
from ibapi.contract import Contract as IbContract
from ibapi.execution import ExecutionFilter as IbExecutionFilter
from ibapi.order import Order as IbOrder
from ibapi.wrapper import EWrapper

from tradenode.testing.venues import DEFAULT_IBKR_ACCOUNT, IbkrVenue, default_ibkr_contracts

# The codec's pure framing and negotiation are tested directly, without a socket.
from tradenode.testing.venues._ibkr_codec import (
    FrameDecoder,
    IbkrProtocolError,
    encode_frame,
    negotiate,
)

D = Decimal
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
EXEC_ID = re.compile(r"^[0-9a-f]{8}\.[0-9a-f]{8}\.01\.01$")
WAIT = 10.0


class Clock:
    """Epoch milliseconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def venue(clock: Clock) -> Iterator[IbkrVenue]:
    with IbkrVenue(seed=1, clock=clock) as local:
        yield local


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh asyncio loop per test for the IB clients' synchronous API, under a policy of
    its own: the process's policy (and whatever loop state it holds) is left as it was."""
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    fresh = asyncio.new_event_loop()
    asyncio.set_event_loop(fresh)
    try:
        yield fresh
    finally:
        # A disconnect closes the transport on the loop's next turns: let them run.
        for _ in range(3):
            fresh.run_until_complete(asyncio.sleep(0))
        fresh.close()
        asyncio.set_event_loop_policy(previous)


@pytest.fixture
def ib(venue: IbkrVenue, loop: asyncio.AbstractEventLoop) -> Iterator[ib_async.IB]:
    client = ib_async.IB()
    client.connect(venue.host, venue.port, clientId=7, timeout=WAIT)
    try:
        yield client
    finally:
        client.disconnect()


def wait_for(client: Any, condition: Callable[[], object], what: str) -> None:
    """Run the client's loop until ``condition()`` holds (a deadline, not a sleep)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        client.waitOnUpdate(timeout=0.2)


def in_thread(function: Callable[[], object]) -> None:
    """Call a knob from another thread and wait for it (as an adapter test would)."""
    worker = threading.Thread(target=function)
    worker.start()
    worker.join(WAIT)


def aapl() -> ib_async.Stock:
    return ib_async.Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")


# ------------------------------------------------------------ raw client


class RawClient:
    """A TWS API client in thirty lines: enough to see exactly what the venue writes."""

    def __init__(self, port: int, versions: str = "v100..187") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buffer = b""
        body = versions.encode()
        self.sock.sendall(b"API\0" + struct.pack(">I", len(body)) + body)

    def send(self, *fields: object) -> None:
        body = "".join(f"{field}\0" for field in fields).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def read(self) -> list[str] | None:
        """The next message's fields; None once the venue closed the socket."""
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + size:
                    body, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
                    return body.decode().split("\0")[:-1]
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:  # a dropped socket (RST)
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def until(self, wanted: Callable[[list[str]], bool]) -> list[list[str]]:
        """Every message up to and including the first ``wanted`` one."""
        seen: list[list[str]] = []
        while True:
            message = self.read()
            if message is None:
                raise AssertionError(f"closed before the wanted message; saw {seen}")
            seen.append(message)
            if wanted(message):
                return seen

    def start(self, client_id: int) -> list[list[str]]:
        self.send(71, 2, client_id, "")
        return self.until(lambda m: m[0] == "4" and m[3] == "2158")

    def place(self, order_id: int, action: str, quantity: int, order_ref: str, **kw: Any) -> None:
        """placeOrder at server version 178 (no faProfile), as ib_async 2.1 writes it."""
        order_type = kw.get("order_type", "MKT")
        lmt = kw.get("lmt", "")
        fields: list[object] = [3, order_id, 265598, "AAPL", "STK", "", 0.0, "", "", "SMART"]
        fields += ["NASDAQ", "USD", "", "", "", "", action, quantity, order_type, lmt, "", "DAY"]
        fields += ["", "", "", 0, order_ref, 1, 0, 0, 0, 0, 0, 0, 0]
        fields += ["", "", "", "", "", "", ""]  # sharesAllocation .. faPercentage
        fields += [""] * 22 + ["", ""]  # modelCode .. volatilityType, deltaNeutral type/aux
        fields += [0, "", "", "", "", "", ""]  # continuousUpdate .. scalePriceIncrement
        fields += ["", "", "", ""]  # scaleTable .. hedgeType
        fields += [0, "", "", 0, 0, ""]  # optOut .. deltaNeutralContract, algoStrategy
        fields += ["", 0, "", 0, 0, 0, 0]  # algoId, whatIf, misc, solicited, randomize x2, conds
        fields += [""] * 11  # adjusted fields, soft dollar tier, cashQty
        fields += ["", "", "", "", 0, 0, 0, 0]  # mifid2 x4 .. usePriceMgmtAlgo
        fields += ["", "", 0, "", ""]  # duration, postToAts, autoCancelParent, advErr, time
        self.send(*fields)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(venue: IbkrVenue) -> Iterator[RawClient]:
    client = RawClient(venue.port)
    assert client.read() is not None  # server version and connection time
    client.start(3)
    try:
        yield client
    finally:
        client.close()


# ------------------------------------------------------------- the codec


def test_frames_split_across_reads_and_versions_negotiate() -> None:
    decoder = FrameDecoder()
    data = b"API\0" + struct.pack(">I", 9) + b"v100..187" + encode_frame(["71", "2", "5", ""])
    decoder.feed(data[:7])
    assert decoder.handshake() is None
    decoder.feed(data[7:20])
    assert decoder.handshake() == "v100..187"
    assert decoder.messages() == []
    decoder.feed(data[20:])
    assert decoder.messages() == [["71", "2", "5", ""]]
    assert negotiate("v100..187") == 178
    assert negotiate("v157..176 +PACEAPI") == 176
    assert negotiate("v177") == 177
    for bad in ("v100..150", "hello", "v1..x"):
        with pytest.raises(IbkrProtocolError):
            negotiate(bad)
    garbage = FrameDecoder()
    garbage.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(IbkrProtocolError, match="API"):
        garbage.handshake()


# ----------------------------------------------------- handshake, raw


def test_handshake_answers_version_and_time_then_startapi_greets(venue: IbkrVenue) -> None:
    client = RawClient(venue.port, "v100..187")
    try:
        assert client.read() == ["178", "20231114 22:13:20 UTC"]
        greeting = client.start(11)
        assert ["15", "1", DEFAULT_IBKR_ACCOUNT] in greeting
        assert ["9", "1", "1"] in greeting
        codes = [m[3] for m in greeting if m[0] == "4"]
        assert codes == ["2104", "2106", "2158"]
        assert all(m[2] == "-1" and m[5] == "" for m in greeting if m[0] == "4")
        client.send(49, 1)
        assert client.until(lambda m: m[0] == "49")[-1] == ["49", "1", str(T0 // 1000)]
        assert venue.connections() == [{"clientId": 11, "serverVersion": 178}]
    finally:
        client.close()


def test_messages_follow_the_negotiated_version(venue: IbkrVenue) -> None:
    """176 keeps faProfile in openOrder; 178 adds pendingPriceRevision to execDetails."""
    lengths: dict[str, dict[str, int]] = {}
    for number, versions in enumerate(("v100..176", "v100..177", "v100..178")):
        client = RawClient(venue.port, versions)
        try:
            assert client.read() == [versions[-3:], "20231114 22:13:20 UTC"]
            client.start(20 + number)
            if versions.endswith("176"):
                client.send(*_with_fa_profile(client, number + 1))
            else:
                client.place(number + 1, "BUY", 1, f"v{versions[-3:]}")
            seen = client.until(lambda m: m[0] == "59")
            lengths[versions[-3:]] = {m[0]: len(m) for m in seen if m[0] in {"5", "11"}}
        finally:
            client.close()
    assert lengths["176"]["5"] == lengths["177"]["5"] + 1 == lengths["178"]["5"] + 1
    assert lengths["176"]["11"] == lengths["177"]["11"] == lengths["178"]["11"] - 1
    assert [o["orderRef"] for o in venue.orders()] == ["v176", "v177", "v178"]


def _with_fa_profile(client: RawClient, order_id: int) -> list[object]:
    """The placeOrder :meth:`RawClient.place` writes, with version 176's faProfile field."""
    captured: list[tuple[object, ...]] = []
    original = client.send
    client.send = lambda *fields: captured.append(fields)  # type: ignore[method-assign]
    try:
        client.place(order_id, "BUY", 1, "v176")
    finally:
        client.send = original  # type: ignore[method-assign]
    fields = list(captured[0])
    fields.insert(42, "")  # after faGroup, faMethod, faPercentage (fields 39-41)
    return fields


def test_a_client_below_176_is_closed_and_a_busy_client_id_gets_326(venue: IbkrVenue) -> None:
    old = RawClient(venue.port, "v100..150")
    try:
        assert old.read() is None
    finally:
        old.close()
    first, second = RawClient(venue.port), RawClient(venue.port)
    try:
        assert first.read() is not None and second.read() is not None
        first.start(5)
        second.send(71, 2, 5, "")
        answer = second.read()
        assert answer is not None and answer[:4] == ["4", "2", "-1", "326"]
        assert second.read() is None
    finally:
        first.close()
        second.close()


def test_a_client_that_resets_its_socket_does_not_stop_the_venue(venue: IbkrVenue) -> None:
    for _ in range(3):
        client = RawClient(venue.port)
        assert client.read() is not None
        client.start(30)
        client.send(49, 1)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST while the venue has an answer to write
    survivor = RawClient(venue.port)
    try:
        assert survivor.read() is not None
        survivor.start(30)
    finally:
        survivor.close()


def test_malformed_and_unknown_messages_are_counted_not_fatal(
    venue: IbkrVenue, raw: RawClient
) -> None:
    raw.send(3, "not-an-id")
    error = raw.until(lambda m: m[0] == "4")[-1]
    assert error[3] == "320"
    raw.send(987, 1)
    raw.send(49, 1)
    assert raw.until(lambda m: m[0] == "49")
    assert venue.malformed() == 2
    bad = socket.create_connection(("127.0.0.1", venue.port), timeout=WAIT)
    try:
        bad.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert bad.recv(100) == b""
    finally:
        bad.close()
    assert venue.malformed() == 3
    raw.send(49, 1)
    assert raw.until(lambda m: m[0] == "49")


# -------------------------------------------------------------- ib_async


def test_ib_async_connects_and_qualifies_a_stock_an_fx_pair_a_future_and_an_option(
    ib: ib_async.IB,
) -> None:
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == [DEFAULT_IBKR_ACCOUNT]
    stock = aapl()
    fx = ib_async.Forex("EURUSD")
    future = ib_async.Future("ES", "202612", "CME")
    option = ib_async.Option("AAPL", "20261218", 200, "C", "SMART", multiplier="100")
    ib.qualifyContracts(stock, fx, future, option)
    assert (stock.conId, fx.conId, future.conId, option.conId) == (
        265598,
        12087792,
        637533641,
        722345871,
    )
    assert future.lastTradeDateOrContractMonth == "20261218" and future.multiplier == "50"
    assert fx.localSymbol == "EUR.USD" and option.localSymbol == "AAPL  261218C00200000"
    [details] = ib.reqContractDetails(future)
    assert details.minTick == 0.25 and details.sizeIncrement == 1
    assert details.longName == "E-mini S&P 500"
    [stock_details] = ib.reqContractDetails(stock)
    assert stock_details.minTick == 0.01 and stock_details.contract.primaryExchange == "NASDAQ"
    assert ib.reqContractDetails(ib_async.Stock("NOPE", "SMART", "USD")) == []


def test_a_market_order_sweeps_the_book_one_execution_per_level(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    trade = ib.placeOrder(aapl(), ib_async.MarketOrder("BUY", 150, orderRef="coid-1"))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled", "the fill")
    wait_for(ib, lambda: all(f.commissionReport.execId for f in trade.fills), "commissions")
    fills = trade.fills
    assert [(f.execution.shares, f.execution.price) for f in fills] == [(100, 190.0), (50, 190.1)]
    assert all(EXEC_ID.match(f.execution.execId) for f in fills)
    assert len({f.execution.execId for f in fills}) == 2
    assert {f.execution.orderRef for f in fills} == {"coid-1"}
    assert [f.commissionReport.commission for f in fills] == [1.0, 0.25]
    assert trade.order.permId == fills[0].execution.permId > 0
    assert fills[0].execution.acctNumber == DEFAULT_IBKR_ACCOUNT
    assert fills[0].execution.side == "BOT" and fills[1].execution.cumQty == 150
    assert trade.orderStatus.avgFillPrice == pytest.approx(190.0333333)
    assert venue.positions() == {"AAPL": D(150)}
    assert [f["execId"] for f in venue.fills()] == [f.execution.execId for f in fills]
    wait_for(ib, lambda: [p.position for p in ib.positions()] == [150], "the position update")
    [position] = ib.positions()
    assert position.contract.conId == 265598
    [open_order_echo] = [t for t in ib.trades() if t.order.orderId == trade.order.orderId]
    assert open_order_echo.order.orderRef == "coid-1"


def test_a_resting_limit_fills_partially_as_the_price_passes_through_it(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    order = ib_async.LimitOrder("BUY", 250, 189.0, orderRef="coid-2", tif="GTC")
    trade = ib.placeOrder(aapl(), order)
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted", "acceptance")
    in_thread(lambda: venue.set_price("AAPL", D("188.50")))
    wait_for(ib, lambda: trade.orderStatus.filled == 100, "a partial fill")
    assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 150
    assert trade.fills[0].execution.price == 189.0 and trade.fills[0].execution.lastLiquidity == 1
    in_thread(lambda: venue.set_price("AAPL", D("188.40")))
    in_thread(lambda: venue.set_price("AAPL", D("188.30")))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled", "the rest")
    assert [f.execution.shares for f in trade.fills] == [100, 100, 50]
    assert venue.orders()[0]["status"] == "Filled"


def test_modify_cancel_and_global_cancel(venue: IbkrVenue, ib: ib_async.IB) -> None:
    order = ib_async.LimitOrder("BUY", 10, 180.0, orderRef="coid-3")
    trade = ib.placeOrder(aapl(), order)
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted", "acceptance")
    order.lmtPrice = 181.5
    order.totalQuantity = 20
    ib.placeOrder(aapl(), order)
    wait_for(ib, lambda: venue.orders()[0]["lmtPrice"] == D("181.5"), "the modify")
    assert venue.orders()[0]["totalQuantity"] == D(20)
    assert venue.submissions() == {"coid-3": 2} and venue.placements() == {"coid-3": 1}
    ib.cancelOrder(order)
    wait_for(ib, lambda: trade.orderStatus.status == "Cancelled", "the cancel")
    assert any(entry.errorCode == 202 for entry in trade.log)
    others = [
        ib.placeOrder(aapl(), ib_async.LimitOrder("SELL", 5, 200.0 + n, orderRef=f"g-{n}"))
        for n in range(3)
    ]
    wait_for(ib, lambda: all(t.orderStatus.status == "Submitted" for t in others), "acceptance")
    ib.reqGlobalCancel()
    wait_for(ib, lambda: all(t.orderStatus.status == "Cancelled" for t in others), "cancel-all")
    assert {o["status"] for o in venue.orders()} == {"Cancelled"}


def test_stop_stop_limit_and_trailing_orders_trigger_on_the_last_price(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    future = ib_async.Future("ES", "202612", "CME")
    ib.qualifyContracts(future)
    stop = ib.placeOrder(future, ib_async.StopOrder("SELL", 1, 4990.0, orderRef="stp"))
    stop_limit = ib.placeOrder(
        future, ib_async.StopLimitOrder("BUY", 2, 5011.0, 5010.0, orderRef="stplmt")
    )
    trail = ib_async.Order(
        action="SELL", totalQuantity=1, orderType="TRAIL", auxPrice=20.0, orderRef="trail"
    )
    trailing = ib.placeOrder(future, trail)
    wait_for(ib, lambda: stop.orderStatus.status == "PreSubmitted", "the stop resting")
    in_thread(lambda: venue.set_price("ESZ6", D("5010.00")))
    wait_for(ib, lambda: stop_limit.orderStatus.status == "Filled", "the stop-limit")
    assert stop.orderStatus.status == "PreSubmitted"
    in_thread(lambda: venue.set_price("ESZ6", D("4989.75")))
    wait_for(ib, lambda: stop.orderStatus.status == "Filled", "the stop")
    wait_for(ib, lambda: trailing.orderStatus.status == "Filled", "the trailing stop")
    assert venue.positions() == {"ESZ6": D(0)} or venue.positions() == {}
    commission = [f.commissionReport.commission for f in stop_limit.fills]
    assert commission == [1.7]


def test_if_touched_orders_trigger_when_the_price_comes_to_them(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    mit = ib.placeOrder(
        aapl(), ib_async.Order(action="BUY", totalQuantity=10, orderType="MIT", auxPrice=185.0)
    )
    lit = ib.placeOrder(
        aapl(),
        ib_async.Order(
            action="SELL", totalQuantity=10, orderType="LIT", lmtPrice=194.9, auxPrice=195.0
        ),
    )
    wait_for(ib, lambda: lit.orderStatus.status == "PreSubmitted", "both resting")
    in_thread(lambda: venue.set_price("AAPL", D("185.00")))
    wait_for(ib, lambda: mit.orderStatus.status == "Filled", "the MIT")
    assert lit.orderStatus.status == "PreSubmitted"
    in_thread(lambda: venue.set_price("AAPL", D("195.00")))
    wait_for(ib, lambda: lit.orderStatus.status == "Filled", "the LIT")
    assert lit.fills[0].execution.price >= 194.9
    assert venue.positions() == {}


def test_ioc_fills_what_it_can_and_fok_all_or_nothing(venue: IbkrVenue, ib: ib_async.IB) -> None:
    ioc = ib.placeOrder(aapl(), ib_async.LimitOrder("BUY", 250, 190.05, tif="IOC", orderRef="ioc"))
    fok = ib.placeOrder(aapl(), ib_async.LimitOrder("BUY", 250, 190.05, tif="FOK", orderRef="fok"))
    wait_for(ib, lambda: ioc.orderStatus.status == fok.orderStatus.status == "Cancelled", "both")
    assert [f.execution.shares for f in ioc.fills] == [100] and fok.fills == []
    assert venue.positions() == {"AAPL": D(100)}


def test_gtd_expires_at_its_time_and_opg_rests_as_a_day_order(
    venue: IbkrVenue, clock: Clock, ib: ib_async.IB
) -> None:
    gtd = ib_async.LimitOrder("BUY", 5, 180.0, tif="GTD", goodTillDate="20231114 22:20:00 UTC")
    good_till = ib.placeOrder(aapl(), gtd)
    opening = ib.placeOrder(aapl(), ib_async.LimitOrder("BUY", 5, 181.0, tif="OPG"))
    wait_for(ib, lambda: opening.orderStatus.status == "Submitted", "both resting")
    clock.now += 10 * 60_000  # 22:23:20, past the GTD time
    in_thread(lambda: venue.set_price("AAPL", D("190.05")))
    wait_for(ib, lambda: good_till.orderStatus.status == "Cancelled", "the GTD expiry")
    assert opening.orderStatus.status == "Submitted"
    bad = ib.placeOrder(aapl(), ib_async.LimitOrder("BUY", 5, 180.0, tif="GTD", goodTillDate="x"))
    wait_for(ib, lambda: bad.orderStatus.status == "Cancelled", "the refusal")


def test_clear_faults_forgets_armed_faults_and_releases_held_executions(
    venue: IbkrVenue, raw: RawClient
) -> None:
    venue.pacing_violation(5)
    venue.refuse_next_order()
    venue.hold_executions()
    venue.clear_faults()
    raw.place(1, "BUY", 1, "after-clear")
    seen = raw.until(lambda m: m[0] == "59")
    assert not any(m[0] == "4" for m in seen) and any(m[0] == "11" for m in seen)
    venue.hold_executions()
    raw.place(2, "BUY", 1, "held-then-cleared")
    raw.until(lambda m: m[0] == "3" and m[2] == "Filled")
    venue.clear_faults()
    assert any(
        m[0] == "11" and m[26] == "held-then-cleared" for m in raw.until(lambda m: m[0] == "59")
    )


def test_average_cost_and_realized_pnl_include_commissions_as_ib_books_them(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    future = ib_async.Future("ES", "202612", "CME")
    ib.qualifyContracts(future)
    start = D(venue.account_values()["NetLiquidation"])
    opening = ib.placeOrder(future, ib_async.MarketOrder("BUY", 2, orderRef="open"))
    wait_for(ib, lambda: opening.orderStatus.status == "Filled", "the opening fill")
    wait_for(ib, lambda: [p.position for p in ib.positions()] == [2], "the position")
    [position] = ib.positions()
    assert position.avgCost == pytest.approx(5000 * 50 + 1.70 / 2)  # 2 x 0.85 inside the cost
    assert D(venue.account_values()["NetLiquidation"]) == start - D("1.70")
    in_thread(lambda: venue.set_price("ESZ6", D("5010.00")))
    closing = ib.placeOrder(future, ib_async.MarketOrder("SELL", 2, orderRef="close"))
    wait_for(ib, lambda: closing.orderStatus.status == "Filled", "the closing fill")
    wait_for(ib, lambda: closing.fills and closing.fills[-1].commissionReport.execId, "fees")
    [report] = [f.commissionReport for f in closing.fills]
    assert report.realizedPNL == pytest.approx(2 * 10 * 50 - 1.70 - 1.70)
    assert D(venue.account_values()["NetLiquidation"]) == start + 1000 - D("3.40")
    assert D(venue.account_values()["RealizedPnL"]) == D("996.60")


def test_refusals_come_as_ib_error_codes(venue: IbkrVenue, ib: ib_async.IB) -> None:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, _contract: errors.append((req_id, code, text))
    off_tick = ib.placeOrder(aapl(), ib_async.LimitOrder("BUY", 1, 189.005, orderRef="tick"))
    wait_for(ib, lambda: any(code == 110 for _r, code, _t in errors), "error 110")
    assert errors[-1][0] == off_tick.order.orderId
    venue.refuse_next_order(201, "Order rejected - reason:margin")
    refused = ib.placeOrder(aapl(), ib_async.MarketOrder("BUY", 1, orderRef="refused"))
    wait_for(ib, lambda: refused.orderStatus.status == "Cancelled", "the rejection")
    assert (refused.order.orderId, 201, "Order rejected - reason:margin") in errors
    assert venue.submissions()["refused"] == 1 and venue.orders() == []
    filled = ib.placeOrder(aapl(), ib_async.MarketOrder("BUY", 1, orderRef="done"))
    wait_for(ib, lambda: filled.orderStatus.status == "Filled", "the fill")
    ib.client.placeOrder(filled.order.orderId, aapl(), ib_async.MarketOrder("BUY", 2))
    wait_for(ib, lambda: any(code == 104 for _r, code, _t in errors), "error 104")
    ib.client.placeOrder(1, aapl(), ib_async.MarketOrder("BUY", 2))
    wait_for(ib, lambda: any(code == 103 for _r, code, _t in errors), "error 103")
    ib.client.cancelOrder(999, "")
    wait_for(ib, lambda: any(code == 10147 for _r, code, _t in errors), "error 10147")
    ib.client.cancelOrder(filled.order.orderId, "")
    wait_for(ib, lambda: any(code == 161 for _r, code, _t in errors), "error 161")
    bracket = ib.bracketOrder("BUY", 1, 180.0, 200.0, 170.0)
    ib.placeOrder(aapl(), bracket.parent)
    wait_for(ib, lambda: any("parentId" in text for _r, _c, text in errors), "a clear refusal")
    bogus = ib_async.Order(action="BUY", totalQuantity=1, orderType="MOC")
    ib.placeOrder(aapl(), bogus)
    wait_for(ib, lambda: any(code == 387 for _r, code, _t in errors), "error 387")
    assert [o["orderRef"] for o in venue.orders()] == ["done"]  # nothing else reached the book


def test_executions_by_filter_completed_orders_and_account_summary(
    venue: IbkrVenue, clock: Clock, ib: ib_async.IB
) -> None:
    first = ib.placeOrder(aapl(), ib_async.MarketOrder("BUY", 10, orderRef="early"))
    wait_for(ib, lambda: first.orderStatus.status == "Filled", "the first fill")
    clock.now += 60_000
    fx = ib_async.Forex("EURUSD")
    ib.qualifyContracts(fx)
    second = ib.placeOrder(fx, ib_async.MarketOrder("SELL", 20000, orderRef="late"))
    wait_for(ib, lambda: second.orderStatus.status == "Filled", "the second fill")
    every = ib.reqExecutions()
    assert {f.execution.orderRef for f in every} == {"early", "late"}
    since = ib.reqExecutions(ib_async.ExecutionFilter(time="20231114-22:14:00"))
    assert [f.execution.orderRef for f in since] == ["late"]
    assert ib.reqExecutions(ib_async.ExecutionFilter(clientId=99)) == []
    assert [f.execution.side for f in ib.reqExecutions(ib_async.ExecutionFilter(side="SELL"))] == [
        "SLD"
    ]
    completed = ib.reqCompletedOrders(apiOnly=True)
    assert {t.order.orderRef for t in completed} == {"early", "late"}
    assert {t.orderStatus.status for t in completed} == {"Filled"}
    summary = {v.tag: v.value for v in ib.accountSummary()}
    assert D(summary["TotalCashValue"]) == venue.exchange.cash().quantize(D("0.01"))
    assert set(summary) >= {"NetLiquidation", "AvailableFunds", "BuyingPower", "InitMarginReq"}
    assert venue.positions() == {"AAPL": D(10), "EUR.USD": D(-20000)}


def test_market_data_ticks_follow_the_price(venue: IbkrVenue, ib: ib_async.IB) -> None:
    stock = aapl()
    ib.qualifyContracts(stock)
    ticker = ib.reqMktData(stock)
    wait_for(ib, lambda: ticker.last == 190.0, "the first ticks")
    assert ticker.bid == ticker.ask == 190.0
    in_thread(lambda: venue.set_price("AAPL", D("191.25")))
    wait_for(ib, lambda: ticker.last == 191.25, "the tick after a price move")
    ib.cancelMktData(stock)


def test_ib_insync_connects_trades_and_reads_fills(
    venue: IbkrVenue, loop: asyncio.AbstractEventLoop
) -> None:
    client = ib_insync.IB()
    client.connect(venue.host, venue.port, clientId=9, timeout=WAIT)
    try:
        assert client.client.serverVersion() == 176
        option = ib_insync.Option("AAPL", "20261218", 200, "C", "SMART")
        client.qualifyContracts(option)
        assert option.conId == 722345871
        trade = client.placeOrder(option, ib_insync.MarketOrder("BUY", 3, orderRef="ins-1"))
        wait_for(client, lambda: trade.orderStatus.status == "Filled", "the fill")
        wait_for(client, lambda: trade.fills and trade.fills[-1].commissionReport.execId, "fees")
        assert sum(f.execution.shares for f in trade.fills) == 3
        assert trade.fills[0].execution.orderRef == "ins-1"
        assert trade.fills[0].commissionReport.commission == pytest.approx(1.95)
        wait_for(client, lambda: [p.position for p in client.positions()] == [3], "the position")
        assert [p.position for p in client.positions()] == [3]
    finally:
        client.disconnect()


class OfficialApp(EWrapper, EClient):
    """IB's own Python API (``ibapi``, 10.50 from PyPI as ibapi-stable): every callback queued."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()

    def until(self, name: str) -> list[tuple[Any, ...]]:
        seen = []
        while True:
            event = self.events.get(timeout=WAIT)
            seen.append(event)
            if event[0] == name:
                return seen

    def nextValidId(self, orderId: int) -> None:
        self.events.put(("nextValidId", orderId))

    def error(self, reqId: int, *args: Any) -> None:
        self.events.put(("error", reqId, *args))

    def contractDetails(self, reqId: int, details: Any) -> None:
        self.events.put(("contractDetails", details.contract.conId, details.minTick))

    def contractDetailsEnd(self, reqId: int) -> None:
        self.events.put(("contractDetailsEnd", reqId))

    def orderStatus(self, orderId: int, status: str, filled: Any, *rest: Any) -> None:
        self.events.put(("orderStatus", orderId, status, filled))

    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:
        self.events.put(("execDetails", reqId, execution.execId, execution.orderRef))

    def execDetailsEnd(self, reqId: int) -> None:
        self.events.put(("execDetailsEnd", reqId))

    def commissionAndFeesReport(self, report: Any) -> None:
        self.events.put(("commission", report.execId, report.commissionAndFees))

    def position(self, account: str, contract: Any, position: Any, avgCost: float) -> None:
        self.events.put(("position", contract.localSymbol, position, avgCost))

    def positionEnd(self) -> None:
        self.events.put(("positionEnd",))

    def accountSummary(self, reqId: int, account: str, tag: str, value: str, currency: str) -> None:
        self.events.put(("accountSummary", tag, value))

    def accountSummaryEnd(self, reqId: int) -> None:
        self.events.put(("accountSummaryEnd",))

    def updatePortfolio(self, contract: Any, position: Any, *rest: Any) -> None:
        self.events.put(("portfolio", contract.localSymbol, position))

    def accountDownloadEnd(self, accountName: str) -> None:
        self.events.put(("accountDownloadEnd", accountName))

    def completedOrder(self, contract: Any, order: Any, orderState: Any) -> None:
        self.events.put(("completedOrder", order.orderRef, order.permId, orderState.status))

    def completedOrdersEnd(self) -> None:
        self.events.put(("completedOrdersEnd",))


def test_ib_official_python_api_connects_trades_and_reads_fills(venue: IbkrVenue) -> None:
    app = OfficialApp()
    app.connect(venue.host, venue.port, 5)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        assert app.until("nextValidId")[-1] == ("nextValidId", 1)
        assert app.serverVersion() == 178
        contract = IbContract()
        contract.symbol, contract.secType, contract.currency = "AAPL", "STK", "USD"
        contract.exchange, contract.primaryExchange = "SMART", "NASDAQ"
        app.reqContractDetails(1, contract)
        assert ("contractDetails", 265598, 0.01) in app.until("contractDetailsEnd")
        order = IbOrder()
        order.action, order.totalQuantity, order.orderType = "BUY", D(150), "MKT"
        order.orderRef = "official-1"
        app.placeOrder(1, contract, order)
        seen = app.until("commission")
        while not any(e[0] == "orderStatus" and e[2] == "Filled" for e in seen):
            seen += app.until("commission")
        executions = [e for e in seen if e[0] == "execDetails"]
        assert [e[3] for e in executions] == ["official-1", "official-1"]
        assert [e[2] for e in executions] == [f["execId"] for f in venue.fills()]
        app.reqExecutions(2, IbExecutionFilter())
        replay = app.until("execDetailsEnd")
        assert [e[2] for e in replay if e[0] == "execDetails"] == [e[2] for e in executions]
        assert [e[2] for e in replay if e[0] == "commission"] == [1.0, 0.25]
        app.reqPositions()
        assert ("position", "AAPL", D(150), pytest.approx(190.04)) in app.until("positionEnd")
        app.reqAccountSummary(3, "All", "NetLiquidation,TotalCashValue")
        summary = {e[1]: e[2] for e in app.until("accountSummaryEnd") if e[0] == "accountSummary"}
        assert set(summary) == {"NetLiquidation", "TotalCashValue"}
        app.reqAccountUpdates(True, venue.account)
        updates = app.until("accountDownloadEnd")
        assert ("portfolio", "AAPL", D(150)) in updates
        app.reqCompletedOrders(True)
        [done] = [e for e in app.until("completedOrdersEnd") if e[0] == "completedOrder"]
        assert done == ("completedOrder", "official-1", venue.orders()[0]["permId"], "Filled")
    finally:
        app.disconnect()
        reader.join(WAIT)


# ------------------------------------------------------------- faults


def test_dropped_connections_are_seen_and_the_fills_survive(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    trade = ib.placeOrder(aapl(), ib_async.MarketOrder("BUY", 5, orderRef="before-drop"))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled", "the fill")
    assert venue.drop_connections() == 1
    deadline = time.monotonic() + WAIT
    while ib.isConnected() and time.monotonic() < deadline:
        # ib_async reports the lost socket by raising from its loop, as it would live.
        with contextlib.suppress(ConnectionError):
            ib.waitOnUpdate(timeout=0.2)
    assert not ib.isConnected()
    ib.connect(venue.host, venue.port, clientId=7, timeout=WAIT)
    assert [f.execution.orderRef for f in ib.reqExecutions()] == ["before-drop"]


def test_connectivity_lost_then_restored_with_data_maintained_or_lost(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    codes: list[int] = []
    ib.errorEvent += lambda _req, code, _text, _contract: codes.append(code)
    resting = ib.placeOrder(aapl(), ib_async.LimitOrder("BUY", 100, 189.0, orderRef="held"))
    wait_for(ib, lambda: resting.orderStatus.status == "Submitted", "acceptance")
    venue.connectivity_lost()
    wait_for(ib, lambda: 1100 in codes, "error 1100")
    in_thread(lambda: venue.set_price("AAPL", D("188.00")))
    assert venue.orders()[0]["status"] == "Filled"
    assert venue.connectivity_restored(data_lost=False) > 0
    wait_for(ib, lambda: resting.orderStatus.status == "Filled", "the held fill")
    assert codes[-1] == 1102 and len(resting.fills) == 1
    second = ib.placeOrder(aapl(), ib_async.LimitOrder("SELL", 100, 190.0, orderRef="lost"))
    wait_for(ib, lambda: second.orderStatus.status == "Submitted", "acceptance")
    venue.connectivity_lost()
    in_thread(lambda: venue.set_price("AAPL", D("190.50")))
    assert venue.connectivity_restored(data_lost=True) == 0
    wait_for(ib, lambda: codes[-1] == 1101, "error 1101")
    assert second.fills == []
    assert {f.execution.orderRef for f in ib.reqExecutions()} == {"held", "lost"}


def test_duplicate_and_late_executions(venue: IbkrVenue, raw: RawClient) -> None:
    venue.duplicate_executions(1)
    raw.place(1, "BUY", 10, "dup")
    seen = raw.until(lambda m: m[0] == "59")
    executions = [m for m in seen if m[0] == "11"]
    assert len(executions) == 2 and executions[0] == executions[1]
    assert executions[0][14] == venue.fills()[0]["execId"] and executions[0][26] == "dup"
    venue.hold_executions()
    raw.place(2, "SELL", 10, "late")
    seen = raw.until(lambda m: m[0] == "3" and m[2] == "Filled")
    assert not any(m[0] in {"11", "59"} for m in seen)
    assert venue.release_executions() == 2
    late = raw.until(lambda m: m[0] == "59")
    assert [m[0] for m in late if m[0] != "5"] == ["11", "59"]
    assert next(m for m in late if m[0] == "11")[26] == "late"


def test_a_pacing_violation_for_placements_only_lets_other_messages_through(
    venue: IbkrVenue, raw: RawClient
) -> None:
    venue.pacing_violation(1, placements_only=True)
    raw.send(49, 1)  # reqCurrentTime, written first: answered, not paced
    assert raw.until(lambda m: m[0] in {"4", "49"})[-1][0] == "49"
    assert httpx.get(f"{venue.admin_url}/faults").json()["pacing_violations"] == 1
    raw.place(1, "BUY", 1, "paced")
    error = raw.until(lambda m: m[0] == "4")[-1]
    assert error[2:4] == ["1", "100"] and venue.submissions() == {}
    assert httpx.get(f"{venue.admin_url}/faults").json()["pacing_violations"] == 0
    raw.place(2, "BUY", 1, "after")
    assert any(m[0] == "11" for m in raw.until(lambda m: m[0] == "59"))
    assert venue.submissions() == {"after": 1}


def test_pacing_violation_delay_and_corruption(venue: IbkrVenue, raw: RawClient) -> None:
    venue.pacing_violation(1)
    raw.place(1, "BUY", 1, "paced")
    error = raw.until(lambda m: m[0] == "4")[-1]
    assert error[2:4] == ["1", "100"] and venue.orders() == []
    assert venue.submissions() == {}
    venue.delay_orders(1)
    raw.place(2, "BUY", 1, "slow")
    raw.send(49, 1)  # behind the held order on the same connection: held too, as TWS reads in order
    venue.wait_for(
        lambda: httpx.get(f"{venue.admin_url}/faults").json()["held_orders"] == ["slow"],
        what="the placement held",
    )
    assert venue.orders() == []
    assert venue.release_orders() == 1
    answered = [m[0] for m in raw.until(lambda m: m[0] == "49")]
    assert "5" in answered and "59" in answered, answered
    assert answered.index("5") < answered.index("49"), "answered in the order they were sent"
    venue.corrupt_next_message()
    raw.send(49, 1)
    truncated = raw.read()
    assert truncated is not None and truncated[0] == "49" and len(truncated) == 3
    assert raw.read() == ["49", "1", str(T0 // 1000)]


def test_orders_of_another_client_are_routed_to_it_and_listed_to_all(
    venue: IbkrVenue, raw: RawClient
) -> None:
    venue.place_order("AAPL", "BUY", D(5), client_id=0, order_ref="manual-mkt")
    resting = venue.place_order(
        "AAPL", "SELL", D(5), order_type="LMT", lmt_price=D(195), client_id=0, order_ref="manual"
    )
    raw.send(5, 1)
    mine = raw.until(lambda m: m[0] == "53")
    assert [m[0] for m in mine] == ["53"]
    raw.send(16, 1)
    every = raw.until(lambda m: m[0] == "53")
    [echo] = [m for m in every if m[0] == "5"]
    assert echo[1] == str(resting) and "manual" in echo
    raw.send(7, 3, 4, 0, "", "", "", "", "", "")
    replay = raw.until(lambda m: m[0] == "55")
    assert [m[26] for m in replay if m[0] == "11"] == ["manual-mkt"]
    assert venue.submissions() == {"manual-mkt": 1, "manual": 1}


def test_a_corrected_execution_comes_with_the_next_exec_id_suffix(
    venue: IbkrVenue, ib: ib_async.IB
) -> None:
    trade = ib.placeOrder(aapl(), ib_async.MarketOrder("BUY", 10, orderRef="to-correct"))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled", "the fill")
    [original] = trade.fills
    corrected_id = venue.correct_execution(original.execution.execId, D("189.95"))
    assert corrected_id == original.execution.execId[:-2] + "02"
    wait_for(ib, lambda: len(trade.fills) == 2, "the correction")
    correction = trade.fills[1].execution
    assert (correction.execId, correction.price, correction.shares) == (corrected_id, 189.95, 10)
    assert correction.orderRef == "to-correct"
    assert [f["execId"] for f in venue.fills()] == [corrected_id]
    assert venue.fills()[0]["price"] == D("189.95")


def test_a_lost_order_answer_leaves_the_order_to_be_found_by_asking(venue: IbkrVenue) -> None:
    venue.lose_next_order_answer()
    first = RawClient(venue.port)
    try:
        assert first.read() is not None
        first.start(4)
        first.place(1, "BUY", 3, "unknown-outcome")
        assert first.read() is None
    finally:
        first.close()
    assert [o["orderRef"] for o in venue.orders()] == ["unknown-outcome"]
    again = RawClient(venue.port)
    try:
        assert again.read() is not None
        again.start(4)
        again.send(99, 1)
        completed = again.until(lambda m: m[0] == "102")
        assert [m[0] for m in completed] == ["101", "102"] and "unknown-outcome" in completed[0]
    finally:
        again.close()


def test_a_muted_order_answer_keeps_the_socket_and_withholds_that_order_only(
    venue: IbkrVenue, raw: RawClient
) -> None:
    venue.lose_next_order_answer(drop_connection=False)
    raw.place(1, "BUY", 3, "muted")
    raw.place(2, "BUY", 4, "heard")
    heard = raw.until(lambda m: m[0] == "59")
    assert {m[1] for m in heard if m[0] in {"5", "3"}} == {"2"}
    assert [m[26] for m in heard if m[0] == "11"] == ["heard"]
    assert [o["status"] for o in venue.orders()] == ["Filled", "Filled"]
    raw.send(7, 3, 8, 0, "", "", "", "", "", "")
    replay = raw.until(lambda m: m[0] == "55")
    assert [m[26] for m in replay if m[0] == "11"] == ["muted", "heard"]
    assert venue.placements() == {"muted": 1, "heard": 1}


def test_ib_async_survives_a_corrupt_message(venue: IbkrVenue, ib: ib_async.IB) -> None:
    venue.corrupt_next_message()
    trade = ib.placeOrder(aapl(), ib_async.MarketOrder("BUY", 1, orderRef="after-garbage"))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled", "the fill")
    assert ib.isConnected()


def test_down_refuses_connections_until_up(venue: IbkrVenue) -> None:
    port = venue.port
    venue.down()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
    venue.up()
    assert venue.port == port
    client = RawClient(port)
    try:
        assert client.read() is not None
    finally:
        client.close()


def test_the_admin_port_serves_the_knobs(venue: IbkrVenue) -> None:
    answer = httpx.post(f"{venue.admin_url}/set_price", json={"symbol": "EUR.USD", "price": "1.1"})
    assert answer.status_code == 200 and answer.json()["ok"]
    assert venue.quote("EUR.USD")[2] == D("1.10000")
    state = httpx.get(f"{venue.admin_url}/state").json()
    assert state["account"] == DEFAULT_IBKR_ACCOUNT and state["up"]
    knobs = {k["name"] for k in httpx.get(f"{venue.admin_url}/knobs").json()}
    assert {"connectivity_lost", "hold_executions", "pacing_violation"} <= knobs
    bad = httpx.post(f"{venue.admin_url}/set_price", json={"symbol": "NOPE", "price": "1"})
    assert bad.status_code == 400


def test_default_contracts_are_the_documented_ones() -> None:
    kinds = {(c.sec_type, c.local_symbol) for c in default_ibkr_contracts()}
    assert kinds >= {
        ("STK", "AAPL"),
        ("CASH", "EUR.USD"),
        ("FUT", "ESZ6"),
        ("OPT", "AAPL  261218C00200000"),
    }


# -------------------------------------------------------------- the command


def test_the_ibkr_command_prints_one_json_line_and_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tradenode", "venue", "ibkr", "--seed", "3", "--account", "DU7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        where = json.loads(process.stdout.readline())
        assert set(where) == {"host", "port", "admin", "account"}
        assert where["host"] == "127.0.0.1" and where["account"] == "DU7"
        client = RawClient(int(where["port"]))
        try:
            assert client.read() is not None
            assert ["15", "1", "DU7"] in client.start(1)
        finally:
            client.close()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
        helped = subprocess.run(
            [sys.executable, "-m", "tradenode", "venue", "ibkr", "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "connectivity_restored" in helped.stdout and "--account" in helped.stdout
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
