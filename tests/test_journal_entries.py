"""Journal entries (what the OMS journals, and their bytes) and replaying them into an OmsState."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode import DecodeError
from tradenode.actors import (
    EntryKind,
    JournalEntry,
    OmsError,
    OmsState,
    ReplayResult,
    apply_entry,
    decode_entry,
    encode_entry,
    entry_to_dict,
    replay,
    summarize,
)

# The client-id counter's bound, which an entry's counter must respect.
from tradenode.actors._client_ids import MAX_COUNTER

# The entry format's limits and field table are what is under test.
from tradenode.actors._oms_entries import ENTRY_FIELDS, ENTRY_FORMAT_VERSION, MAX_ENTRY_BYTES
from tradenode.messages import (
    CancelRejected,
    DenialCode,
    LiquiditySide,
    Message,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Quote,
    Side,
    SubmitOrder,
    SubmitParentOrder,
    TwapParams,
    encode,
)

D = Decimal
K = EntryKind


# Random OMS call sequences (also used by test_oms_snapshot) ------------------------------

#: Orders of one family can replace each other; families differ in venue, symbol,
#: side or strategy, so replaces across them are refused and fills can mismatch.
FAMILIES = (
    ("BIN", "BTCUSDT", Side.BUY, "s1"),
    ("BIN", "BTCUSDT", Side.SELL, "s2"),
    ("PAP", "ETHUSDT", Side.BUY, "s1"),
    ("PAP", "ETHUSDT", Side.SELL, "s1"),
)
PER_FAMILY = 4
IDS = tuple(f"f{family}-{n}" for family in range(len(FAMILIES)) for n in range(PER_FAMILY))
VENUES = ("BIN", "PAP")
SYMBOLS = ("BTCUSDT", "ETHUSDT")
STRATEGIES = ("s1", "s2")
QUANTITIES = (D("0.5"), D("1"), D("2"), D("3"))
PRICES = (D("99.5"), D("100"), D("100.25"), D("101"), D("97.3"))


def family_of(client_order_id: str) -> tuple[str, str, Side, str]:
    return FAMILIES[int(client_order_id[1 : client_order_id.index("-")])]


def small_state() -> OmsState:
    """A tiny completed-order LRU and latency window, so forgetting and windows are exercised."""
    return OmsState(completed_capacity=3, latency_window=4)


_ids = st.sampled_from(IDS)
_quantities = st.sampled_from(QUANTITIES)
_prices = st.sampled_from(PRICES)
_venue_order_ids = st.sampled_from(("v1", "v2", "v3"))


@st.composite
def _submit_order(draw: st.DrawFn, client_order_id: str) -> SubmitOrder:
    venue, symbol, side, strategy = family_of(client_order_id)
    market = draw(st.booleans())
    return SubmitOrder(
        client_order_id=client_order_id,
        strategy_id=strategy,
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET if market else OrderType.LIMIT,
        quantity=draw(_quantities),
        price=None if market else draw(_prices),
    )


def _known_id(draw: st.DrawFn, known: tuple[str, ...]) -> str:
    """Mostly an order the run has registered, so calls reach deep into lifecycles."""
    if known and draw(st.integers(0, 9)) < 8:
        return draw(st.sampled_from(known))
    return draw(_ids)


def _new_id(draw: st.DrawFn, known: tuple[str, ...], family: str | None = None) -> str:
    """Mostly an id not used yet (of ``family`` when given); sometimes a reused one."""
    pool = IDS if family is None else tuple(i for i in IDS if i.startswith(f"{family}-"))
    fresh = tuple(i for i in pool if i not in known)
    if fresh and draw(st.integers(0, 9)) < 9:
        return draw(st.sampled_from(fresh))
    return draw(st.sampled_from(pool))


@st.composite
def _report(draw: st.DrawFn, coid: str) -> Message:
    venue, symbol, side, _ = family_of(coid)
    if draw(st.integers(0, 9)) == 0:  # now and then a report that names another venue
        venue = "PAP" if venue == "BIN" else "BIN"
    kind = draw(st.integers(0, 8))
    if kind <= 2:  # fills are the common case
        if draw(st.integers(0, 9)) == 0:
            side = side.opposite
        return OrderFilled(
            client_order_id=coid,
            venue=venue,
            venue_order_id=draw(_venue_order_ids),
            execution_id=f"x{draw(st.integers(0, 11))}",
            symbol=symbol,
            side=side,
            last_quantity=draw(_quantities),
            last_price=draw(_prices),
            commission=draw(st.sampled_from((D(0), D("0.01"), D("-0.002")))),
            commission_asset=draw(st.sampled_from((None, "USDT", "BNB"))),
            liquidity=draw(st.sampled_from(LiquiditySide)),
        )
    if kind == 3:
        return OrderAccepted(
            client_order_id=coid, venue=venue, venue_order_id=draw(_venue_order_ids)
        )
    if kind == 4:
        return draw(
            st.sampled_from(
                (
                    OrderCanceled(client_order_id=coid, venue=venue),
                    OrderExpired(client_order_id=coid, venue=venue, venue_order_id="v1"),
                    OrderRejected(client_order_id=coid, venue=venue, code="-2010", reason="no"),
                )
            )
        )
    if kind == 5:
        return draw(
            st.sampled_from(
                (
                    CancelRejected(client_order_id=coid, venue=venue, code="-2011", reason="x"),
                    ModifyRejected(client_order_id=coid, venue=venue, code="-2021", reason="y"),
                )
            )
        )
    if kind == 6:
        return OrderModified(
            client_order_id=coid,
            venue=venue,
            venue_order_id=draw(_venue_order_ids),
            quantity=draw(_quantities),
            price=draw(st.none() | _prices),
        )
    quantity = draw(_quantities)
    return OrderStatusReport(
        client_order_id=coid,
        venue=venue,
        symbol=symbol,
        side=side,
        status=draw(st.sampled_from(OrderStatus)),
        quantity=quantity,
        filled_quantity=draw(st.sampled_from((D(0), quantity / 2, quantity))),
        venue_order_id=draw(st.none() | _venue_order_ids),
    )


@st.composite
def oms_call(draw: st.DrawFn, known: tuple[str, ...] = ()) -> JournalEntry:
    """One call the OMS makes on its state, as the entry that journals it (``ts_ns`` 0).

    ``known`` are the ids registered so far, which most calls then name.
    """
    kind = draw(
        st.sampled_from(
            (
                *(K.REGISTER, K.REGISTER, K.SUBMITTED, K.SUBMITTED),
                *(K.REPORT, K.REPORT, K.REPORT, K.REPORT, K.REPORT),
                *(K.DENIED, K.PENDING_CANCEL, K.PENDING_REPLACE, K.LINK_REPLACEMENT, K.MARK),
                *(K.COUNTER, K.ARRIVAL),
            )
        )
    )
    if kind is K.REGISTER:
        return JournalEntry(kind=kind, ts_ns=0, message=draw(_submit_order(_new_id(draw, known))))
    if kind is K.REPORT:
        return JournalEntry(kind=kind, ts_ns=0, message=draw(_report(_known_id(draw, known))))
    if kind is K.DENIED:
        return JournalEntry(
            kind=kind,
            ts_ns=0,
            client_order_id=_known_id(draw, known),
            code=draw(st.sampled_from(DenialCode)),
            reason=draw(st.sampled_from(("", "too big", "venue 'X' is not connected"))),
        )
    if kind is K.LINK_REPLACEMENT:
        old = _known_id(draw, known)
        # Now and then a replacement of another instrument, which the state refuses.
        family = None if draw(st.integers(0, 5)) == 0 else old[: old.index("-")]
        new = _new_id(draw, known, family)
        return JournalEntry(
            kind=kind, ts_ns=0, client_order_id=old, message=draw(_submit_order(new))
        )
    if kind is K.MARK:
        return JournalEntry(
            kind=kind,
            ts_ns=0,
            venue=draw(st.sampled_from(VENUES)),
            symbol=draw(st.sampled_from(SYMBOLS)),
            price=draw(_prices),
        )
    if kind is K.COUNTER:
        return JournalEntry(
            kind=kind,
            ts_ns=0,
            strategy_id=draw(st.sampled_from(STRATEGIES)),
            counter=draw(st.integers(0, 50)),
        )
    if kind is K.ARRIVAL:
        return JournalEntry(
            kind=kind, ts_ns=0, client_order_id=_known_id(draw, known), price=draw(_prices)
        )
    return JournalEntry(kind=kind, ts_ns=0, client_order_id=_known_id(draw, known))


@st.composite
def oms_calls(draw: st.DrawFn, max_size: int = 80) -> list[JournalEntry]:
    """A run of calls with non-decreasing timestamps, as the OMS's clock gives them."""
    count = draw(st.integers(0, max_size))
    known: list[str] = []
    ts_ns = 1_000
    calls = []
    for _ in range(count):
        ts_ns += draw(st.integers(0, 50))
        call = dataclasses.replace(draw(oms_call(tuple(known))), ts_ns=ts_ns)
        if (
            call.kind in (K.REGISTER, K.LINK_REPLACEMENT)
            and call.order.client_order_id not in known
        ):
            known.append(call.order.client_order_id)
        calls.append(call)
    return calls


def call_directly(state: OmsState, entry: JournalEntry) -> object:
    """What the OMS does for the call ``entry`` records, written against OmsState alone.

    Deliberately not ``apply_entry``: the property tests compare the two paths.
    """
    try:
        if entry.kind is K.REGISTER:
            return state.register(entry.order, entry.ts_ns)
        if entry.kind is K.LINK_REPLACEMENT:
            assert entry.client_order_id is not None
            return state.link_replacement(entry.client_order_id, entry.order, entry.ts_ns)
    except OmsError as exc:
        return (type(exc).__name__, str(exc))
    if entry.kind is K.REPORT:
        assert entry.message is not None
        return state.apply(entry.message, entry.ts_ns)
    if entry.kind is K.MARK:
        assert entry.venue is not None and entry.symbol is not None and entry.price is not None
        state.mark(entry.venue, entry.symbol, entry.price)
        return None
    if entry.kind is K.COUNTER:
        return None
    coid = entry.client_order_id
    assert coid is not None
    if entry.kind is K.ARRIVAL:
        assert entry.price is not None
        state.set_arrival(coid, entry.price)
        return None
    if entry.kind is K.DENIED:
        assert entry.code is not None and entry.reason is not None
        return state.mark_denied(coid, entry.code, entry.reason, entry.ts_ns)
    if entry.kind is K.SUBMITTED:
        return state.mark_submitted(coid, entry.ts_ns)
    if entry.kind is K.PENDING_CANCEL:
        return state.mark_pending_cancel(coid, entry.ts_ns)
    assert entry.kind is K.PENDING_REPLACE
    return state.mark_pending_replace(coid, entry.ts_ns)


def observe(state: OmsState) -> dict[str, Any]:
    """Everything the OMS can ask its state, for comparing two states."""
    keys = [(venue, symbol) for venue in VENUES for symbol in SYMBOLS]
    return {
        "views": {coid: state.get(coid) for coid in IDS},
        "logical": {coid: state.logical_order(coid) for coid in IDS},
        "links": {coid: (state.replacement_of(coid), state.replaced_by(coid)) for coid in IDS},
        "fills": state.fills(),
        "fills_by_order": {coid: state.fills(coid) for coid in IDS},
        "open_orders": state.open_orders(),
        "open_by_venue": {venue: state.open_orders(venue=venue) for venue in VENUES},
        "open_counts": {venue: state.open_count(venue) for venue in VENUES},
        "positions": state.positions(),
        "positions_by_strategy": state.positions(by_strategy=True),
        "position_lookups": {
            (venue, symbol, strategy): state.position(venue, symbol, strategy)
            for venue, symbol in keys
            for strategy in (None, *STRATEGIES)
        },
        "commissions": {
            (venue, symbol, strategy): state.commissions(venue, symbol, strategy)
            for venue, symbol in keys
            for strategy in (None, *STRATEGIES)
        },
        "counts": state.counts(),
        "metrics": state.metrics(),
        "arrivals": state.arrivals.to_plain(),
        "parents": state.parents.to_plain(),
    }


@contextlib.contextmanager
def quiet_oms() -> Iterator[None]:
    """Random runs make the state log every report it ignores; nobody reads them here."""
    loggers = [logging.getLogger(name) for name in ("tradenode.oms", "tradenode.journal")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# Examples -----------------------------------------------------------------------------------


def _order(coid: str = "o-1", quantity: str = "2", price: str | None = "100") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue="BIN",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=D(quantity),
        price=None if price is None else D(price),
    )


def _fill(
    coid: str = "o-1", quantity: str = "1", price: str = "100.5", xid: str = "x1"
) -> OrderFilled:
    return OrderFilled(
        client_order_id=coid,
        venue="BIN",
        venue_order_id="v1",
        execution_id=xid,
        symbol="BTCUSDT",
        side=Side.BUY,
        last_quantity=D(quantity),
        last_price=D(price),
        commission=D("0.010"),
        commission_asset="USDT",
    )


def one_of_each() -> list[JournalEntry]:
    return [
        JournalEntry(kind=K.REGISTER, ts_ns=1, message=_order()),
        JournalEntry(
            kind=K.DENIED, ts_ns=2, client_order_id="o-9", code=DenialCode.MAX_POSITION, reason="r"
        ),
        JournalEntry(kind=K.SUBMITTED, ts_ns=3, client_order_id="o-1"),
        JournalEntry(kind=K.PENDING_CANCEL, ts_ns=4, client_order_id="o-1"),
        JournalEntry(kind=K.PENDING_REPLACE, ts_ns=5, client_order_id="o-1"),
        JournalEntry(
            kind=K.LINK_REPLACEMENT, ts_ns=6, client_order_id="o-1", message=_order("o-2", "3")
        ),
        JournalEntry(kind=K.REPORT, ts_ns=7, message=_fill()),
        JournalEntry(kind=K.MARK, ts_ns=8, venue="BIN", symbol="BTCUSDT", price=D("101.50")),
        JournalEntry(kind=K.COUNTER, ts_ns=9, strategy_id="s1", counter=MAX_COUNTER + 1),
        JournalEntry(
            kind=K.BALANCE_BASELINE, ts_ns=10, venue="BIN", asset="BTC", quantity=D("-0.25")
        ),
        JournalEntry(
            kind=K.VENUE_CURSOR, ts_ns=11, venue="BIN", scope="trades/BTCUSDT", cursor="42"
        ),
        JournalEntry(kind=K.ACCEPTANCE_WINDOW, ts_ns=12, venue="BIN", seconds=D("6.000")),
        JournalEntry(kind=K.ARRIVAL, ts_ns=13, client_order_id="o-1", price=D("100.25")),
        JournalEntry(
            kind=K.PARENT,
            ts_ns=14,
            message=SubmitParentOrder(
                parent_id="twap-1",
                strategy_id="s1",
                venue="BIN",
                symbol="BTCUSDT",
                side=Side.BUY,
                quantity=D("2.0"),
                algorithm=TwapParams(duration=60.0, slices=4, limit_price=D("101.50")),
            ),
        ),
        JournalEntry(
            kind=K.AUDIT,
            ts_ns=15,
            who="ops",
            action="kill-switch",
            detail='{"flatten":true}',
            result="ok: complete",
        ),
    ]


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"kind": K.VENUE_CURSOR, "venue": "BIN", "scope": "", "cursor": "1"}, "scope"),
        ({"kind": K.VENUE_CURSOR, "venue": "BIN", "scope": "t", "cursor": "x" * 257}, "cursor"),
        ({"kind": K.VENUE_CURSOR, "venue": "BIN", "scope": "t"}, "cursor=None"),
        ({"kind": K.ACCEPTANCE_WINDOW, "venue": "BIN", "seconds": D("-1")}, "seconds"),
        ({"kind": K.ACCEPTANCE_WINDOW, "venue": "BIN", "seconds": D("NaN")}, "seconds"),
        ({"kind": K.ACCEPTANCE_WINDOW, "venue": "BIN", "seconds": 5}, "seconds"),
    ],
)
def test_cursor_and_window_entries_refuse_what_replay_could_not_use(
    fields: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        JournalEntry(ts_ns=1, **fields)  # type: ignore[arg-type]


def test_every_kind_has_its_fields_and_round_trips_exactly() -> None:
    entries = one_of_each()
    assert {entry.kind for entry in entries} == set(EntryKind) == set(ENTRY_FIELDS)
    for entry in entries:
        payload = encode_entry(entry)
        decoded = decode_entry(payload)
        assert decoded == entry
        assert encode_entry(decoded) == payload
        assert decode_entry(bytearray(payload)) == entry
        assert decode_entry(memoryview(payload)) == entry
    # Decimals keep their exponent, not just their value.
    mark = decode_entry(encode_entry(entries[7]))
    assert mark.price is not None and str(mark.price) == "101.50"
    fill = decode_entry(encode_entry(entries[6])).message
    assert isinstance(fill, OrderFilled) and str(fill.commission) == "0.010"


def test_each_payload_carries_the_format_version_and_only_its_kinds_fields() -> None:
    for entry in one_of_each():
        frame = msgpack.unpackb(encode_entry(entry))
        assert frame[:3] == [ENTRY_FORMAT_VERSION, entry.kind.value, entry.ts_ns]
        assert len(frame) == 3 + len(ENTRY_FIELDS[entry.kind])
    submitted = JournalEntry(kind=K.SUBMITTED, ts_ns=3, client_order_id="o-1")
    assert len(encode_entry(submitted)) < 20


def test_every_execution_report_type_can_be_journaled() -> None:
    reports: list[Message] = [
        OrderAccepted(client_order_id="o-1", venue="BIN", venue_order_id="v1"),
        OrderRejected(client_order_id="o-1", venue="BIN", code="-2010", reason="funds"),
        _fill(),
        OrderCanceled(client_order_id="o-1", venue="BIN"),
        OrderExpired(client_order_id="o-1", venue="BIN"),
        OrderModified(client_order_id="o-1", venue="BIN", venue_order_id="v1", quantity=D(3)),
        CancelRejected(client_order_id="o-1", venue="BIN", code="c", reason="r"),
        ModifyRejected(client_order_id="o-1", venue="BIN", code="c", reason="r"),
        OrderStatusReport(
            client_order_id="o-1",
            venue="BIN",
            symbol="BTCUSDT",
            side=Side.SELL,
            status=OrderStatus.PARTIALLY_FILLED,
            quantity=D("2"),
            filled_quantity=D("0.5"),
            avg_fill_price=D("99.125"),
        ),
    ]
    for report in reports:
        entry = JournalEntry(kind=K.REPORT, ts_ns=42, message=report)
        assert decode_entry(encode_entry(entry)) == entry


def test_entry_to_dict_is_json_with_decimals_as_strings_and_enums_as_values() -> None:
    exported = [entry_to_dict(entry) for entry in one_of_each()]
    assert json.loads(json.dumps(exported)) == exported
    assert exported[1] == {
        "kind": "denied",
        "ts_ns": 2,
        "client_order_id": "o-9",
        "code": "MAX_POSITION",
        "reason": "r",
    }
    assert exported[6] == {
        "kind": "report",
        "ts_ns": 7,
        "message": {
            "type": "order_filled",
            "client_order_id": "o-1",
            "venue": "BIN",
            "venue_order_id": "v1",
            "execution_id": "x1",
            "symbol": "BTCUSDT",
            "side": "BUY",
            "last_quantity": "1",
            "last_price": "100.5",
            "commission": "0.010",
            "commission_asset": "USDT",
            "liquidity": "NONE",
            "ts_ns": 0,
        },
    }
    assert exported[7] == {
        "kind": "mark",
        "ts_ns": 8,
        "venue": "BIN",
        "symbol": "BTCUSDT",
        "price": "101.50",
    }
    assert exported[8] == {"kind": "counter", "ts_ns": 9, "strategy_id": "s1", "counter": 2**64}
    assert exported[5]["message"]["client_order_id"] == "o-2"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"kind": "register", "ts_ns": 1}, "must be an EntryKind"),
        ({"kind": K.SUBMITTED, "ts_ns": -1, "client_order_id": "o-1"}, "ts_ns"),
        ({"kind": K.SUBMITTED, "ts_ns": True, "client_order_id": "o-1"}, "ts_ns"),
        ({"kind": K.SUBMITTED, "ts_ns": 2**64, "client_order_id": "o-1"}, "ts_ns"),
        ({"kind": K.SUBMITTED, "ts_ns": 1}, r"submitted\)\.client_order_id=None"),
        ({"kind": K.SUBMITTED, "ts_ns": 1, "client_order_id": "has space"}, "client_order_id"),
        (
            {"kind": K.SUBMITTED, "ts_ns": 1, "client_order_id": "o-1", "reason": "x"},
            "a submitted entry has no reason",
        ),
        ({"kind": K.REGISTER, "ts_ns": 1, "message": _fill()}, "must be a SubmitOrder"),
        ({"kind": K.REPORT, "ts_ns": 1, "message": _order()}, "not an execution report"),
        (
            {
                "kind": K.REPORT,
                "ts_ns": 1,
                "message": Quote(venue="BIN", symbol="BTCUSDT", bid=D(1), ask=D(2)),
            },
            "not an execution report",
        ),
        (
            {"kind": K.DENIED, "ts_ns": 1, "client_order_id": "o-1", "code": "X", "reason": ""},
            "must be a DenialCode",
        ),
        (
            {"kind": K.MARK, "ts_ns": 1, "venue": "BIN", "symbol": "BTCUSDT", "price": D(0)},
            "greater than zero",
        ),
        (
            {"kind": K.MARK, "ts_ns": 1, "venue": "BIN", "symbol": "BTCUSDT", "price": 1.5},
            "floats round",
        ),
        ({"kind": K.COUNTER, "ts_ns": 1, "strategy_id": "s1", "counter": -1}, "counter"),
        (
            {"kind": K.COUNTER, "ts_ns": 1, "strategy_id": "s1", "counter": MAX_COUNTER + 2},
            "counter",
        ),
        ({"kind": K.COUNTER, "ts_ns": 1, "strategy_id": "s1", "counter": True}, "counter"),
        ({"kind": K.COUNTER, "ts_ns": 1, "strategy_id": " s1", "counter": 1}, "strategy_id"),
    ],
)
def test_an_entry_that_could_not_be_replayed_cannot_be_made(
    fields: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        JournalEntry(**fields)


def test_order_is_only_for_entries_that_carry_one() -> None:
    assert one_of_each()[0].order.client_order_id == "o-1"
    with pytest.raises(TypeError, match="no SubmitOrder"):
        _ = one_of_each()[2].order


def _payload(*frame: object) -> bytes:
    data: bytes = msgpack.packb(list(frame), use_bin_type=True)
    return data


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty payload"),
        (b"\xc1", "not msgpack"),
        (_payload(1, "submitted", 3, "o-1")[:-2], "truncated or malformed"),
        (_payload(1, "submitted", 3, "o-1") + b"\x00", "1 trailing byte"),
        (msgpack.packb({"kind": "submitted"}), "expected an array"),
        (_payload(1, "submitted"), "expected an array"),
        (_payload(2, "submitted", 3, "o-1"), "unsupported format version 2"),
        (_payload("1", "submitted", 3, "o-1"), "unsupported format version '1'"),
        (_payload(1, "SUBMITTED", 3, "o-1"), "unknown kind 'SUBMITTED'"),
        (_payload(1, 7, 3, "o-1"), "unknown kind 7"),
        (_payload(1, "submitted", 3.0, "o-1"), r"\(submitted\): ts_ns must be an int"),
        (_payload(1, "submitted", -3, "o-1"), "ts_ns=-3"),
        (_payload(1, "submitted", 3), r"expected 1 field\(s\) \(client_order_id\), got 0"),
        (_payload(1, "submitted", 3, "o-1", None), "got 2"),
        (_payload(1, "submitted", 3, b"o-1"), r"\.client_order_id: expected a string, got bytes"),
        (_payload(1, "submitted", 3, "bad id!"), "client_order_id"),
        (_payload(1, "register", 3, "not bytes"), r"\(register\)\.message: expected the bytes"),
        (_payload(1, "register", 3, b"\x93\x01"), r"\(register\)\.message: truncated"),
        (_payload(1, "register", 3, encode(_fill())), "must be a SubmitOrder"),
        (_payload(1, "report", 3, encode(_order())), "not an execution report"),
        (_payload(1, "denied", 3, "o-1", "NOPE", "r"), "'NOPE' is not a DenialCode"),
        (_payload(1, "mark", 3, "BIN", "BTCUSDT", "1e"), r"\.price: '1e' is not a decimal"),
        (_payload(1, "mark", 3, "BIN", "BTCUSDT", "NaN"), "is not a decimal"),
        (_payload(1, "mark", 3, "BIN", "BTCUSDT", 5), "expected a string, got an int"),
        (_payload(1, "mark", 3, "BIN", "BTCUSDT", "-5"), "greater than zero"),
        (_payload(1, "mark", 3, "BIN", "BTCUSDT", "1" * 101), "is not a decimal"),
        (_payload(1, "counter", 3, "s1", "01"), r"\.counter: '01' is not a counter"),
        (_payload(1, "counter", 3, "s1", "-1"), "is not a counter"),
        (_payload(1, "counter", 3, "s1", 5), "expected a string"),
        (_payload(1, "counter", 3, "s1", str(2**64 + 1)), "counter=18446744073709551617"),
        (b"\xa2\xff\xfe", "not valid UTF-8|expected an array"),
        (b"\x00" * (MAX_ENTRY_BYTES + 1), "exceeds"),
    ],
)
def test_a_bad_payload_is_a_decode_error_that_says_what_is_wrong(
    payload: bytes, match: str
) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_entry(payload)


def test_decode_entry_wants_bytes_and_encode_entry_an_entry() -> None:
    with pytest.raises(TypeError, match="needs bytes"):
        decode_entry("submitted")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a JournalEntry"):
        encode_entry(_order())  # type: ignore[arg-type]


def test_an_entry_whose_bytes_could_not_be_read_back_is_refused_on_the_way_out() -> None:
    entry = JournalEntry(
        kind=K.MARK, ts_ns=1, venue="BIN", symbol="BTCUSDT", price=D("1." + "1" * 100)
    )
    with pytest.raises(ValueError, match=r"\(mark\)\.price: decimal text exceeds 100"):
        encode_entry(entry)


@settings(max_examples=150, deadline=None)
@given(entry=oms_call(), ts_ns=st.integers(0, 2**64 - 1))
def test_any_entry_round_trips(entry: JournalEntry, ts_ns: int) -> None:
    entry = dataclasses.replace(entry, ts_ns=ts_ns)
    assert decode_entry(encode_entry(entry)) == entry
    assert json.loads(json.dumps(entry_to_dict(entry))) == entry_to_dict(entry)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=64))
def test_random_bytes_never_raise_anything_but_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_entry(payload)


@settings(max_examples=100, deadline=None)
@given(entry=oms_call(), data=st.data())
def test_corrupted_payloads_decode_or_raise_decode_error(
    entry: JournalEntry, data: st.DataObject
) -> None:
    payload = bytearray(encode_entry(entry))
    index = data.draw(st.integers(0, len(payload) - 1), label="index")
    payload[index] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(1, len(payload)), label="cut")
    try:
        decoded = decode_entry(bytes(payload[:cut]))
    except DecodeError:
        return
    assert isinstance(decoded, JournalEntry)


# Replay -------------------------------------------------------------------------------------


def test_apply_entry_makes_the_call_the_oms_made() -> None:
    state = OmsState()
    for entry in one_of_each()[:1] + one_of_each()[2:3] + one_of_each()[6:8]:
        apply_entry(state, entry)
    view = state.get("o-1")
    assert view is not None
    assert (view.status, view.filled_quantity, view.submitted_ns) == (
        OrderStatus.PARTIALLY_FILLED,
        D(1),
        3,
    )
    assert state.position("BIN", "BTCUSDT").unrealized_pnl == D(1)  # marked at 101.50
    assert state.commissions("BIN", "BTCUSDT") == {"USDT": D("0.010")}


def test_content_the_state_refuses_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    state = OmsState()
    refused = [
        JournalEntry(kind=K.SUBMITTED, ts_ns=1, client_order_id="nobody"),  # unknown order
        JournalEntry(kind=K.REGISTER, ts_ns=2, message=_order()),
        JournalEntry(kind=K.REGISTER, ts_ns=3, message=_order()),  # duplicate id
        JournalEntry(
            kind=K.LINK_REPLACEMENT, ts_ns=4, client_order_id="o-1", message=_order("o-2")
        ),
        JournalEntry(kind=K.REPORT, ts_ns=5, message=_fill("nobody")),
        JournalEntry(kind=K.PENDING_CANCEL, ts_ns=6, client_order_id="o-1"),  # not sent yet
        JournalEntry(
            kind=K.DENIED, ts_ns=7, client_order_id="o-1", code=DenialCode.RATE_LIMIT, reason=""
        ),
        JournalEntry(
            kind=K.DENIED, ts_ns=8, client_order_id="o-1", code=DenialCode.RATE_LIMIT, reason=""
        ),
    ]
    for entry in refused:
        apply_entry(state, entry)
    result = replay(refused)
    assert result.ignored == 6  # all but the first register and the first denial
    assert result.entries == len(refused)
    view = result.state.get("o-1")
    assert view is not None and view.status is OrderStatus.DENIED
    assert result.state.get("o-2") is None
    assert observe(result.state) == observe(state)


def test_replay_counts_kinds_and_keeps_the_highest_counter_per_strategy() -> None:
    counters = [
        JournalEntry(kind=K.COUNTER, ts_ns=1, strategy_id="s1", counter=5),
        JournalEntry(kind=K.COUNTER, ts_ns=2, strategy_id="s2", counter=1),
        JournalEntry(kind=K.COUNTER, ts_ns=3, strategy_id="s1", counter=3),  # never backwards
        JournalEntry(kind=K.COUNTER, ts_ns=4, strategy_id="killswitch", counter=0),
    ]
    result = replay([*one_of_each()[:1], *counters])
    assert isinstance(result, ReplayResult)
    assert result.counters == {"s1": 5, "s2": 1, "killswitch": 0}
    assert result.counts == {K.REGISTER: 1, K.COUNTER: 4}
    assert (result.entries, result.ignored) == (5, 0)
    assert replay([]).counters == {}
    assert replay([]).entries == 0


def test_replay_continues_a_given_state() -> None:
    entries = one_of_each()
    state = small_state()
    first = replay(entries[:3], state=state)
    assert first.state is state
    second = replay(entries[3:], state=state)
    assert second.state is state
    assert second.counts == {
        kind: 1 for kind in EntryKind if kind not in (K.REGISTER, K.DENIED, K.SUBMITTED)
    }
    assert observe(state) == observe(replay(entries, state=small_state()).state)
    assert replay(iter(entries)).state.snapshot() == replay(entries).state.snapshot()


def test_summarize_counts_what_journal_verify_reports() -> None:
    entries = [
        *one_of_each(),
        JournalEntry(kind=K.REGISTER, ts_ns=10, message=_order("o-3", price=None)),
        JournalEntry(kind=K.SUBMITTED, ts_ns=11, client_order_id="o-3"),
        JournalEntry(kind=K.REPORT, ts_ns=12, message=_fill("o-3", "2", "99", xid="x3")),
        JournalEntry(kind=K.REGISTER, ts_ns=13, message=_order("o-4")),
        JournalEntry(kind=K.SUBMITTED, ts_ns=14, client_order_id="o-4"),
        JournalEntry(kind=K.REGISTER, ts_ns=15, message=_order("o-5")),
        JournalEntry(
            kind=K.DENIED,
            ts_ns=15,
            client_order_id="o-5",
            code=DenialCode.MAX_OPEN_ORDERS,
            reason="",
        ),
    ]
    summary = summarize(replay(entries).state)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["orders"] == 5
    assert summary["orders_by_status"] == {
        "INITIALIZED": 1,  # o-2, the replacement, never marked submitted here
        "SUBMITTED": 1,
        "PENDING_CANCEL": 1,  # o-1: the later pending replace was an illegal move
        "FILLED": 1,
        "DENIED": 1,
    }
    assert summary["open_orders"] == 2
    assert summary["open_orders_by_venue"] == {"BIN": 2}
    assert summary["fills"] == 2
    assert summary["positions"] == [
        {
            "venue": "BIN",
            "symbol": "BTCUSDT",
            "strategy_id": None,
            "quantity": "3",
            "avg_price": "99.5",
            "realized_pnl": "0",
            "unrealized_pnl": "6",
            "ts_ns": 12,
        }
    ]
    assert [p["strategy_id"] for p in summary["positions_by_strategy"]] == ["s1"]
    assert summary["metrics"]["total_orders"] == 5
    assert summary["metrics"]["filled_orders"] == 1
    assert summary["metrics"]["total_filled_notional"] == "298.5"


def test_summarize_an_empty_state() -> None:
    assert summarize(OmsState()) == {
        "orders": 0,
        "orders_by_status": {},
        "open_orders": 0,
        "open_orders_by_venue": {},
        "fills": 0,
        "positions": [],
        "positions_by_strategy": [],
        "metrics": {
            "total_orders": 0,
            "submitted_orders": 0,
            "filled_orders": 0,
            "fill_rate": 0.0,
            "avg_fill_latency_ns": None,
            "total_filled_notional": "0",
            "total_commission": "0",
            "ack_latency_p50_ns": None,
            "ack_latency_p99_ns": None,
            "fill_latency_p50_ns": None,
            "fill_latency_p99_ns": None,
            "open_orders": 0,
            "retained_orders": 0,
        },
    }


def _recorded_run(calls: Iterable[JournalEntry]) -> tuple[OmsState, list[JournalEntry]]:
    """Drives a state as the OMS would, journaling each call (whatever it returned)."""
    state = small_state()
    journal: list[JournalEntry] = []
    for call in calls:
        call_directly(state, call)
        journal.append(call)
    return state, journal


def _through_bytes(entries: Iterable[JournalEntry]) -> Iterator[JournalEntry]:
    for entry in entries:
        yield decode_entry(encode_entry(entry))


@settings(max_examples=120, deadline=None)
@given(calls=oms_calls())
def test_replaying_the_journal_of_a_run_rebuilds_the_same_state(
    calls: list[JournalEntry],
) -> None:
    with quiet_oms():
        _check_replay(calls)


def _check_replay(calls: list[JournalEntry]) -> None:
    original, journal = _recorded_run(calls)
    expected = observe(original)
    replayed = replay(journal, state=small_state())
    assert observe(replayed.state) == expected
    assert replayed.state.snapshot() == original.snapshot()
    assert replayed.entries == len(journal)

    from_bytes = replay(_through_bytes(journal), state=small_state())
    assert observe(from_bytes.state) == expected
    assert from_bytes.state.snapshot() == original.snapshot()
    assert from_bytes.counters == replayed.counters
    assert from_bytes.counts == replayed.counts
    assert from_bytes.ignored == replayed.ignored
    counters: dict[str, int] = {}
    for entry in journal:
        if entry.kind is K.COUNTER and entry.strategy_id is not None and entry.counter is not None:
            counters[entry.strategy_id] = max(counters.get(entry.strategy_id, 0), entry.counter)
    assert replayed.counters == counters


@settings(max_examples=40, deadline=None)
@given(calls=oms_calls(), data=st.data())
def test_replay_from_a_snapshot_plus_the_rest_of_the_journal(
    calls: list[JournalEntry], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(calls)), label="snapshot after")
    with quiet_oms():
        original, journal = _recorded_run(calls)
        head = replay(_through_bytes(journal[:cut]), state=small_state())
        packed = msgpack.packb(head.state.snapshot())
        restored = OmsState.restore(msgpack.unpackb(packed))
        tail = replay(_through_bytes(journal[cut:]), state=restored)
        assert observe(tail.state) == observe(original)
        assert tail.state.snapshot() == original.snapshot()


def test_ignored_calls_must_be_journaled_too(caplog: pytest.LogCaptureFixture) -> None:
    """An ignored report still refreshes its order in the completed LRU: skip it and replay differs."""

    def done(coid: str, ts_ns: int) -> list[JournalEntry]:
        return [
            JournalEntry(kind=K.REGISTER, ts_ns=ts_ns, message=_order(coid, "1")),
            JournalEntry(kind=K.SUBMITTED, ts_ns=ts_ns, client_order_id=coid),
            JournalEntry(kind=K.REPORT, ts_ns=ts_ns, message=_fill(coid, "1", xid=f"x-{coid}")),
        ]

    duplicate = JournalEntry(kind=K.REPORT, ts_ns=5, message=_fill("a", "1", xid="x-a"))
    journal = [*done("a", 1), *done("b", 2), duplicate, *done("c", 6)]
    state = OmsState(completed_capacity=2)
    results = [call_directly(state, entry) for entry in journal]
    assert [r.applied for r in results if hasattr(r, "applied")].count(False) == 1

    everything = replay(journal, state=OmsState(completed_capacity=2)).state
    assert everything.snapshot() == state.snapshot()
    assert (everything.get("a") is None, everything.get("b") is None) == (False, True)

    applied_only = [entry for entry in journal if entry is not duplicate]
    skipped = replay(applied_only, state=OmsState(completed_capacity=2)).state
    assert (skipped.get("a") is None, skipped.get("b") is None) == (True, False)
