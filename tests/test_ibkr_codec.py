"""The IB adapter's pure half: settings, contracts, orders, statuses, executions, error codes.

No network: ib_async's own dataclasses (``Contract``, ``Order``, ``Execution``,
``CommissionReport``, ``ContractDetails``) stand for what its decoder makes of
TWS's messages.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ib_async import CommissionReport, Contract, ContractDetails, Execution

from tradenode import ConfigError, MalformedPayloadError, parse_config
from tradenode.actors import AmendMode, CancelAllScope
from tradenode.brokers.ibkr import IbkrContractSpec, IbkrSettings, ibkr_capabilities

# The codec is internal (no public name): tested directly, imported privately.
from tradenode.brokers.ibkr._codec import (
    ErrorKind,
    IbkrInstrument,
    UnsupportedOrderError,
    classify_error,
    contract_for,
    encode_modify,
    encode_order,
    execution_identity,
    instrument_from_details,
    map_status,
    parse_commission,
    parse_execution,
    parse_order_status,
    redact,
    to_decimal,
)
from tradenode.messages import ModifyOrder, OrderStatus, OrderType, Side, SubmitOrder, TimeInForce

D = Decimal
ROOT = Path(__file__).resolve().parent.parent


def spec(**fields: object) -> IbkrContractSpec:
    return IbkrContractSpec.model_validate(fields)


def instrument(min_tick: str = "0.01", increment: str = "1") -> IbkrInstrument:
    stock = spec(sec_type="STK", symbol="AAPL", primary_exchange="NASDAQ")
    details = ContractDetails(
        contract=Contract(secType="STK", symbol="AAPL", conId=265598, exchange="SMART"),
        minTick=float(min_tick),
        sizeIncrement=float(increment),
    )
    return instrument_from_details("AAPL", stock, details)


def order(**fields: object) -> SubmitOrder:
    base: dict[str, object] = {
        "client_order_id": "c-1",
        "strategy_id": "s1",
        "venue": "ibkr",
        "symbol": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": D(10),
    }
    base.update(fields)
    return SubmitOrder(**base)  # type: ignore[arg-type]


# -- settings -------------------------------------------------------------------------------


def test_contract_specs_for_each_security_type() -> None:
    stock = contract_for(spec(sec_type="STK", symbol="AAPL", primary_exchange="NASDAQ"))
    assert (stock.secType, stock.exchange, stock.primaryExchange) == ("STK", "SMART", "NASDAQ")
    fx = contract_for(spec(sec_type="CASH", symbol="EUR", currency="USD", exchange="IDEALPRO"))
    assert (fx.secType, fx.symbol, fx.currency, fx.exchange) == ("CASH", "EUR", "USD", "IDEALPRO")
    future = contract_for(
        spec(sec_type="FUT", symbol="ES", exchange="CME", expiry="202612", multiplier="50")
    )
    assert (future.lastTradeDateOrContractMonth, future.multiplier) == ("202612", "50")
    option = contract_for(
        spec(
            sec_type="OPT",
            symbol="AAPL",
            expiry="20261218",
            right="C",
            strike=200,
            multiplier="100",
        )
    )
    assert (option.right, option.strike, option.multiplier) == ("C", 200.0, "100")


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"sec_type": "CASH", "symbol": "EUR"}, "exchange"),
        ({"sec_type": "FUT", "symbol": "ES", "exchange": "CME"}, "expiry"),
        ({"sec_type": "FUT", "symbol": "ES", "exchange": "CME", "expiry": "Dec26"}, "expiry"),
        ({"sec_type": "OPT", "symbol": "AAPL", "expiry": "20261218", "strike": 200}, "right"),
        ({"sec_type": "OPT", "symbol": "AAPL", "expiry": "20261218", "right": "C"}, "strike"),
        ({"sec_type": "STK", "symbol": "AAPL", "right": "C"}, "right"),
    ],
)
def test_an_incomplete_contract_is_a_config_error_naming_the_key(
    fields: dict[str, object], key: str
) -> None:
    inline = ", ".join(f"{name}: {value!r}" for name, value in fields.items()).replace("'", '"')
    text = f"""
venues:
  - name: ibkr
    kind: ibkr
    ibkr:
      instruments:
        X1: {{{inline}}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.key == f"venues[0].ibkr.instruments.X1.{key}"


def test_the_paper_config_parses_with_every_instrument() -> None:
    text = (ROOT / "config" / "ibkr-paper.yaml").read_text()
    config = parse_config(text, environ={"IB_ACCOUNT": "DU7654321", "IB_PORT": "4002"})
    settings = config.venues[0].settings
    assert isinstance(settings, IbkrSettings)
    assert (settings.port, settings.account) == (4002, "DU7654321")
    kinds = {name: s.sec_type for name, s in settings.instruments.items()}
    assert set(kinds.values()) == {"STK", "CASH", "FUT", "OPT"}


def test_a_breaker_faster_than_ibs_message_limit_is_refused() -> None:
    text = """
venues:
  - name: ibkr
    kind: ibkr
    ibkr: {port: 7497}
    breaker: {rate_per_second: 80}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "50" in str(caught.value)


def test_capabilities() -> None:
    caps = ibkr_capabilities()
    assert caps.amend is AmendMode.NATIVE and caps.cancel_all is CancelAllScope.ACCOUNT
    assert caps.order_types == {
        OrderType.MARKET,
        OrderType.LIMIT,
        OrderType.STOP,
        OrderType.STOP_LIMIT,
        OrderType.TRAILING_STOP,
    }
    assert caps.time_in_force == {
        TimeInForce.DAY,
        TimeInForce.GTC,
        TimeInForce.IOC,
        TimeInForce.OPG,
        TimeInForce.FOK,
    }
    assert caps.acceptance is None and not caps.reduce_only and not caps.post_only


# -- orders ---------------------------------------------------------------------------------


def test_contract_details_give_tick_and_size_increment() -> None:
    aapl = instrument("0.01", "1")
    assert (aapl.con_id, aapl.min_tick, aapl.size_increment) == (265598, D("0.01"), D(1))
    with pytest.raises(MalformedPayloadError):
        instrument_from_details(
            "X", spec(sec_type="STK", symbol="X"), ContractDetails(contract=Contract(conId=0))
        )


@pytest.mark.parametrize(
    ("fields", "ib_type", "lmt", "aux"),
    [
        ({}, "MKT", None, None),
        ({"order_type": OrderType.LIMIT, "price": D("189.50")}, "LMT", 189.5, None),
        ({"order_type": OrderType.STOP, "stop_price": D("192")}, "STP", None, 192.0),
        (
            {"order_type": OrderType.STOP_LIMIT, "stop_price": D("192"), "price": D("193")},
            "STP LMT",
            193.0,
            192.0,
        ),
        ({"order_type": OrderType.TRAILING_STOP, "trailing_offset": D("1.5")}, "TRAIL", None, 1.5),
    ],
)
def test_each_order_type_as_ib_names_it(
    fields: dict[str, object], ib_type: str, lmt: float | None, aux: float | None
) -> None:
    placed = encode_order(order(**fields), instrument(), order_id=12, account="DU1")
    assert (placed.orderId, placed.orderType, placed.action) == (12, ib_type, "BUY")
    assert (placed.orderRef, placed.account, placed.totalQuantity) == ("c-1", "DU1", 10.0)
    assert placed.tif == "GTC" and placed.transmit
    if lmt is not None:
        assert placed.lmtPrice == lmt
    if aux is not None:
        assert placed.auxPrice == aux


@pytest.mark.parametrize("tif", ["DAY", "GTC", "IOC", "OPG", "FOK"])
def test_time_in_force(tif: str) -> None:
    placed = encode_order(order(time_in_force=TimeInForce(tif)), instrument(), order_id=1)
    assert placed.tif == tif


def test_outside_rth_travels_on_the_order() -> None:
    assert encode_order(order(), instrument(), order_id=1, outside_rth=True).outsideRth


def test_what_ib_would_refuse_for_its_form_is_refused_before_sending() -> None:
    with pytest.raises(UnsupportedOrderError) as tick:
        encode_order(
            order(order_type=OrderType.LIMIT, price=D("189.505")), instrument(), order_id=1
        )
    assert tick.value.code == "110"
    with pytest.raises(UnsupportedOrderError):
        encode_order(order(quantity=D("1.5")), instrument(), order_id=1)
    with pytest.raises(UnsupportedOrderError):
        encode_order(order(time_in_force=TimeInForce.CLS), instrument(), order_id=1)
    with pytest.raises(UnsupportedOrderError):
        encode_order(order(reduce_only=True), instrument(), order_id=1)
    # Fractional FX amounts are fine where the size increment allows them.
    fx = instrument("0.00005", "0.01")
    assert encode_order(order(quantity=D("1000.25")), fx, order_id=1).totalQuantity == 1000.25


def test_a_modify_is_the_same_order_id_with_new_terms() -> None:
    placed = encode_order(
        order(order_type=OrderType.LIMIT, price=D("185")), instrument(), order_id=40
    )
    changed = encode_modify(
        placed,
        ModifyOrder(
            client_order_id="c-1", venue="ibkr", symbol="AAPL", quantity=D(6), price=D("186")
        ),
        instrument(),
    )
    assert (changed.orderId, changed.orderRef, changed.orderType) == (40, "c-1", "LMT")
    assert (changed.totalQuantity, changed.lmtPrice) == (6.0, 186.0)
    with pytest.raises(UnsupportedOrderError):
        encode_modify(
            placed,
            ModifyOrder(client_order_id="c-1", venue="ibkr", symbol="AAPL", stop_price=D(1)),
            instrument(),
        )


# -- what TWS says --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (2104, ErrorKind.INFO),
        (2106, ErrorKind.INFO),
        (2158, ErrorKind.INFO),
        (201, ErrorKind.ORDER_REJECTED),
        (110, ErrorKind.ORDER_REJECTED),
        (103, ErrorKind.DUPLICATE_ORDER_ID),
        (202, ErrorKind.ORDER_CANCELLED),
        (10147, ErrorKind.CANCEL_REJECTED),
        (10148, ErrorKind.CANCEL_REJECTED),
        (161, ErrorKind.CANCEL_REJECTED),
        (105, ErrorKind.MODIFY_REJECTED),
        (100, ErrorKind.PACING),
        (200, ErrorKind.NO_CONTRACT),
        (1100, ErrorKind.CONNECTIVITY_LOST),
        (1101, ErrorKind.RESTORED),
        (1102, ErrorKind.RESTORED),
        (326, ErrorKind.CLIENT_ID_IN_USE),
        (504, ErrorKind.OTHER),
    ],
)
def test_error_codes(code: int, kind: ErrorKind) -> None:
    assert classify_error(code) is kind


@pytest.mark.parametrize(
    ("status", "filled", "quantity", "ours"),
    [
        ("PendingSubmit", "0", "10", None),
        ("PendingCancel", "0", "10", None),
        ("PreSubmitted", "0", "10", OrderStatus.ACCEPTED),
        ("Submitted", "0", "10", OrderStatus.ACCEPTED),
        ("Submitted", "4", "10", OrderStatus.PARTIALLY_FILLED),
        ("Filled", "10", "10", OrderStatus.FILLED),
        ("Cancelled", "4", "10", OrderStatus.CANCELED),
        ("ApiCancelled", "0", "10", OrderStatus.CANCELED),
        ("Inactive", "0", "10", OrderStatus.REJECTED),
        ("Inactive", "3", "10", OrderStatus.CANCELED),
    ],
)
def test_statuses(status: str, filled: str, quantity: str, ours: OrderStatus | None) -> None:
    assert map_status(status, filled=D(filled), quantity=D(quantity)) is ours


def test_an_unknown_status_is_malformed() -> None:
    with pytest.raises(MalformedPayloadError):
        map_status("Sleeping", filled=D(0), quantity=D(1))
    with pytest.raises(MalformedPayloadError):
        parse_order_status(
            1,
            status="Sleeping",
            filled=0.0,
            remaining=1.0,
            avg_fill_price=0.0,
            perm_id=1,
            client_id=1,
        )


def test_an_execution_with_its_commission() -> None:
    when = datetime.datetime(2026, 12, 3, 14, 30, tzinfo=datetime.UTC)
    execution = Execution(
        execId="0000e0d5.6577a1b2.01.01",
        time=when,
        side="BOT",
        shares=100.0,
        price=190.1,
        permId=9,
        clientId=7,
        orderId=12,
        orderRef="c-1",
    )
    report = CommissionReport(execId="0000e0d5.6577a1b2.01.01", commission=1.0, currency="USD")
    parsed = parse_execution(Contract(conId=265598), execution, report)
    assert (parsed.side, parsed.shares, parsed.price) == (Side.BUY, D(100), D("190.1"))
    assert (parsed.order_ref, parsed.order_id, parsed.con_id) == ("c-1", 12, 265598)
    assert (parsed.commission, parsed.commission_currency) == (D(1), "USD")
    assert parsed.time_ns == int(when.timestamp()) * 1_000_000_000
    assert parsed.identity == "0000e0d5.6577a1b2.01"
    assert parse_commission(report).commission == D(1)


def test_a_corrected_execution_is_the_same_execution() -> None:
    assert execution_identity("0000e0d5.6577a1b2.01.01") == execution_identity(
        "0000e0d5.6577a1b2.01.02"
    )
    assert execution_identity("0000e0d5.6577a1b2.01.01") != execution_identity(
        "0000e0d5.6577a1b2.02.01"
    )


@pytest.mark.parametrize(
    "execution",
    [
        Execution(execId="", side="BOT", shares=1.0, price=1.0),
        Execution(execId="x.01", side="HOLD", shares=1.0, price=1.0),
        Execution(execId="x.01", side="BOT", shares=0.0, price=1.0),
        Execution(execId="x.01", side="BOT", shares=float("nan"), price=1.0),
    ],
)
def test_an_unreadable_execution_is_malformed(execution: Execution) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_execution(Contract(conId=1), execution)


def test_numbers_are_exact_and_unset_values_refused() -> None:
    assert to_decimal(1.08005) == D("1.08005")
    with pytest.raises(MalformedPayloadError):
        to_decimal(1.7976931348623157e308)
    with pytest.raises(MalformedPayloadError):
        to_decimal("abc")


def test_the_account_number_is_masked_in_ib_texts() -> None:
    text = "Order rejected - reason: account DU1234567 has insufficient funds"
    assert "DU1234567" not in redact(text, "DU1234567")


def test_an_unknown_or_unreadable_socket_message_is_delivered_as_malformed() -> None:
    # The session's tap on ib_async's decoder is internal: imported privately to feed it
    # messages no TWS would send, without a socket.
    from tradenode.brokers.ibkr._session import IbkrSession, Malformed

    seen: list[object] = []
    session = IbkrSession("t", seen.append, timeout=1.0)
    decoder: Any = session.ib.client.decoder  # ib_async's decoder is untyped
    decoder.interpret(["999", "1", "x"])  # an id ib_async does not know
    decoder.interpret(["3", "1"])  # orderStatus cut short
    decoder.interpret([])  # nothing at all
    assert [type(event) for event in seen] == [Malformed, Malformed, Malformed]
    assert "unknown message" in str(seen[0])
