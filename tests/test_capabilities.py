"""Venue capabilities: declared by each adapter, consulted by the core.

What a venue does not declare (an order type, a time in force, post-only,
fractional quantities) is denied ``UNSUPPORTED_BY_VENUE`` before it is
sent, logged and counted, and the node goes on; client order ids are drawn
within the venue's rules, never repeat, and resume from a journaled counter.
The Binance and paper declarations are pinned, and cross-checked against
what the Binance codec and the simulator actually accept.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import pytest

from tradenode.actors import (
    AcceptanceWindow,
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    ClientOrderIdFamily,
    GetRiskStatus,
    MarketDataKind,
    StrategyContext,
    VenueCapabilities,
)

# The client id generator is internal: its compact form is checked against the venues' rules.
from tradenode.actors._client_ids import COMPACT_MIN_LENGTH, MAX_COUNTER, ClientOrderIds

# The risk engine is internal: checked here against each capability it consults.
from tradenode.actors._risk_limits import RiskContext, RiskLimits

# The risk engine is internal: checked here against each capability it consults.
from tradenode.actors._risk_rules import RISK_DENIAL_CODES, RiskEngine
from tradenode.brokers.binance import binance_capabilities

# Binance's declaration is cross-checked against its codec's own rules, which are private.
from tradenode.brokers.binance._capabilities import BINANCE_CLIENT_ID_RULES
from tradenode.brokers.binance._codec import (
    BINANCE_CLIENT_ORDER_ID,
    UnsupportedOrderError,
    new_order_params,
)
from tradenode.brokers.paper import paper_capabilities
from tradenode.messages import (
    CLIENT_ORDER_ID_PATTERN,
    DenialCode,
    ModifyOrder,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
    TimeInForce,
    TradingState,
)

from ._node_helpers import Harness, running_node

BUY, SELL = Side.BUY, Side.SELL
UNSUPPORTED = DenialCode.UNSUPPORTED_BY_VENUE
NOW = 1_700_000_000_000_000_000
ALNUM16 = ClientIdRules.alphanumeric(16)
_ALNUM16 = re.compile(r"^[0-9A-Za-z]{1,16}$")
_CORE_CHARS = string.ascii_letters + string.digits + ".:/_-"


def order(
    order_type: OrderType = OrderType.LIMIT,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    quantity: str = "1",
    post_only: bool = False,
    coid: str = "c-1",
    venue: str = "v",
) -> SubmitOrder:
    """A valid order of ``order_type``, with whatever prices that type needs."""
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue=venue,
        symbol="BTCUSDT",
        side=BUY,
        order_type=order_type,
        quantity=D(quantity),
        price=D("100") if order_type.needs_price else None,
        stop_price=D("110") if order_type.needs_stop_price else None,
        trailing_offset=D("5") if order_type is OrderType.TRAILING_STOP else None,
        time_in_force=tif,
        expire_time_ns=NOW + 10**12 if tif is TimeInForce.GTD else None,
        post_only=post_only,
        ts_ns=NOW,
    )


def engine() -> RiskEngine:
    return RiskEngine(RiskLimits(), now_ns=lambda: NOW)


# -- the declaration ----------------------------------------------------------------------


def test_native_where_declared_amends_in_place_only_what_the_venue_edits() -> None:
    """Coinbase edits GTC limits and stop-limits in place; every other order's
    modify is a cancel/replace. The plain modes answer the same for every order."""
    caps = VenueCapabilities(
        amend=AmendMode.NATIVE_WHERE_DECLARED,
        native_amend_order_types={OrderType.LIMIT, OrderType.STOP_LIMIT},
        native_amend_time_in_force=[TimeInForce.GTC],
    )
    assert caps.native_amend_time_in_force == frozenset({TimeInForce.GTC})
    assert caps.amends_natively(OrderType.LIMIT, TimeInForce.GTC)
    assert caps.amends_natively(OrderType.STOP_LIMIT, TimeInForce.GTC)
    assert not caps.amends_natively(OrderType.LIMIT, TimeInForce.GTD)
    assert not caps.amends_natively(OrderType.MARKET, TimeInForce.GTC)
    for order_type in OrderType:
        for tif in TimeInForce:
            assert VenueCapabilities(amend=AmendMode.NATIVE).amends_natively(order_type, tif)
            assert not VenueCapabilities(amend=AmendMode.CANCEL_REPLACE).amends_natively(
                order_type, tif
            )
    with pytest.raises(ValueError, match="native_amend_order_types"):
        VenueCapabilities(native_amend_order_types={"LIMIT"})


def test_capabilities_built_as_before_behave_as_before() -> None:
    """Existing constructions keep working, and their order gates are open as they were."""
    caps = VenueCapabilities(amend=AmendMode.CANCEL_REPLACE, cancel_all=CancelAllScope.SYMBOL)
    assert caps.order_types == frozenset(OrderType)
    assert caps.time_in_force == frozenset(TimeInForce)
    assert caps.post_only and caps.fractional_quantity
    assert (caps.batch_submit, caps.batch_cancel) == (0, 0)
    assert caps.client_ids == ClientIdRules(36, _CORE_CHARS)
    assert caps.client_ids.pattern.fullmatch("abc.DEF:1/2_3-4")
    assert caps.market_data == frozenset({MarketDataKind.QUOTES})


def test_capability_sets_are_stored_frozen_and_bad_values_refused() -> None:
    caps = VenueCapabilities(order_types={OrderType.LIMIT}, time_in_force=[TimeInForce.GTC])  # type: ignore[arg-type]
    assert caps.order_types == frozenset({OrderType.LIMIT})
    assert caps.time_in_force == frozenset({TimeInForce.GTC})
    assert hash(caps) == hash(replace(caps))
    with pytest.raises(ValueError, match=r"VenueCapabilities\.order_types=.*OrderType"):
        VenueCapabilities(order_types=frozenset({"LIMIT"}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"VenueCapabilities\.batch_submit=-1"):
        VenueCapabilities(batch_submit=-1)
    with pytest.raises(ValueError, match=r"VenueCapabilities\.post_only"):
        VenueCapabilities(post_only=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"max_length": 0}, r"ClientIdRules\.max_length=0"),
        ({"characters": "abc"}, "digits"),
        ({"characters": "0123456789 "}, "cannot appear"),
        ({"characters": ""}, "non-empty"),
    ],
)
def test_client_id_rules_refuse_what_no_id_could_follow(
    arguments: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        ClientIdRules(**arguments)


def test_client_id_rules_compare_by_meaning_and_read_as_a_pattern() -> None:
    assert ClientIdRules(16, "9876543210") == ClientIdRules(16, "0123456789" * 2)
    assert str(ALNUM16) == "^[0-9A-Za-z]{1,16}$"
    assert str(BINANCE_CLIENT_ID_RULES) == r"^[\-0-9A-Z_a-z]{1,36}$"
    assert ClientIdRules(64).effective_length == 36
    assert ALNUM16.allows("Ab3") and not ALNUM16.allows("a-b") and not ALNUM16.allows("a" * 17)


def test_binance_declaration_is_pinned() -> None:
    assert binance_capabilities(5000) == VenueCapabilities(
        amend=AmendMode.CANCEL_REPLACE,
        reduce_only=False,
        cancel_all=CancelAllScope.SYMBOL,
        positions_are_balances=True,
        acceptance=AcceptanceWindow(5.0, 1.0),
        order_types=frozenset(OrderType) - {OrderType.TRAILING_STOP},
        time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
        post_only=True,
        batch_submit=0,
        batch_cancel=0,
        client_ids=ClientIdRules(36, string.ascii_letters + string.digits + "_-"),
        fractional_quantity=True,
        # The public tape (<symbol>@trade) to trade subscriptions since issue #18.
        market_data=frozenset({MarketDataKind.QUOTES, MarketDataKind.TRADES, MarketDataKind.DEPTH}),
        # icebergQty on LIMIT / LIMIT_MAKER since issue #18 (the Iceberg algorithm goes native).
        native_iceberg=True,
    )


@pytest.mark.parametrize("allow_short", [False, True])
@pytest.mark.parametrize("amend_natively", [False, True])
def test_paper_declaration_is_pinned(amend_natively: bool, allow_short: bool) -> None:
    assert paper_capabilities(
        amend_natively=amend_natively, allow_short=allow_short, latency=0.25
    ) == VenueCapabilities(
        amend=AmendMode.NATIVE if amend_natively else AmendMode.CANCEL_REPLACE,
        reduce_only=False,
        cancel_all=CancelAllScope.ACCOUNT,
        positions_are_balances=not allow_short,
        acceptance=AcceptanceWindow(0.25),
        order_types=frozenset(OrderType),
        time_in_force=frozenset(TimeInForce) - {TimeInForce.OPG, TimeInForce.CLS},
        post_only=True,
        batch_submit=0,
        batch_cancel=0,
        client_ids=ClientIdRules(),
        fractional_quantity=True,
        # The paper venue prints a public tape (MarketTrade) since issue #18.
        market_data=frozenset({MarketDataKind.QUOTES, MarketDataKind.TRADES}),
    )


# -- the declarations are true --------------------------------------------------------------


def _binance_sends(submit: SubmitOrder) -> bool:
    try:
        new_order_params(submit)
    except UnsupportedOrderError:
        return False
    return True


def test_binance_declares_exactly_the_order_types_and_tifs_its_codec_sends() -> None:
    caps = binance_capabilities(5000)
    for order_type in OrderType:
        assert _binance_sends(order(order_type)) == (order_type in caps.order_types), order_type
    for tif in TimeInForce:
        assert _binance_sends(order(tif=tif)) == (tif in caps.time_in_force), tif
    assert _binance_sends(order(post_only=True)) and caps.post_only
    assert _binance_sends(order(quantity="0.00012")) and caps.fractional_quantity
    iceberg = replace(order(), display_quantity=D("0.5"))
    assert _binance_sends(iceberg) and caps.native_iceberg


def test_binance_client_id_rules_are_the_codecs() -> None:
    for char in _CORE_CHARS:
        codec = BINANCE_CLIENT_ORDER_ID.fullmatch(char) is not None
        assert BINANCE_CLIENT_ID_RULES.allows(char) == codec, char
    assert BINANCE_CLIENT_ID_RULES.allows("a" * 36) and not BINANCE_CLIENT_ID_RULES.allows("a" * 37)
    assert BINANCE_CLIENT_ORDER_ID.fullmatch("a" * 36) and not BINANCE_CLIENT_ORDER_ID.fullmatch(
        "a" * 37
    )


def test_the_paper_venue_runs_every_declared_time_in_force_and_type() -> None:
    """Each order the paper venue declares reaches it and is not rejected;
    an auction time in force it does not declare is denied before it."""
    with running_node() as h:
        entry = h.node.directory.venue("paper")
        assert entry is not None
        declared = entry.capabilities
        h.strategy()
        for tif in TimeInForce:
            if tif in declared.time_in_force:
                coid = h.do(place(OrderType.LIMIT, tif=tif))
                assert first_answer(h, coid) in ANSWERS - {OrderRejected, OrderDenied}, tif
        for order_type in declared.order_types:
            coid = h.do(place(order_type))
            assert first_answer(h, coid) in ANSWERS - {OrderRejected, OrderDenied}, order_type
        denied = h.do(place(OrderType.LIMIT, tif=TimeInForce.OPG))
        assert_unsupported(h, denied, "time in force OPG", "(supported: GTC, IOC, FOK, DAY, GTD)")


# -- the risk rule ----------------------------------------------------------------------------


def test_an_undeclared_order_type_is_denied_naming_it_and_what_is_supported() -> None:
    caps = VenueCapabilities(order_types=frozenset({OrderType.MARKET, OrderType.LIMIT}))
    risk = engine()
    decision = risk.check_submit(order(OrderType.STOP), RiskContext(), capabilities=caps)
    assert decision.code is UNSUPPORTED
    assert decision.reason == "venue v does not support order type STOP (supported: MARKET, LIMIT)"
    assert risk.check_submit(order(OrderType.LIMIT), RiskContext(), capabilities=caps).approved
    assert risk.counters() == {UNSUPPORTED: 1}


def test_an_undeclared_time_in_force_is_denied() -> None:
    caps = VenueCapabilities(time_in_force=frozenset({TimeInForce.GTC, TimeInForce.FOK}))
    decision = engine().check_submit(order(tif=TimeInForce.IOC), RiskContext(), capabilities=caps)
    assert decision.code is UNSUPPORTED
    assert "time in force IOC (supported: GTC, FOK)" in decision.reason
    assert engine().check_submit(order(tif=TimeInForce.FOK), RiskContext(), capabilities=caps)


def test_post_only_on_a_venue_without_it_is_denied() -> None:
    caps = VenueCapabilities(post_only=False)
    decision = engine().check_submit(order(post_only=True), RiskContext(), capabilities=caps)
    assert (decision.code, decision.reason) == (
        UNSUPPORTED,
        "venue v does not support post-only orders",
    )
    assert engine().check_submit(order(), RiskContext(), capabilities=caps).approved


def test_a_display_quantity_on_a_venue_without_native_iceberg_is_denied() -> None:
    iceberg = replace(order(quantity="10"), display_quantity=D("2"))
    assert not VenueCapabilities().native_iceberg
    decision = engine().check_submit(iceberg, RiskContext(), capabilities=VenueCapabilities())
    assert (decision.code, decision.reason) == (
        UNSUPPORTED,
        "venue v does not support native iceberg orders (display_quantity 2)",
    )
    native = VenueCapabilities(native_iceberg=True)
    assert engine().check_submit(iceberg, RiskContext(), capabilities=native).approved
    with pytest.raises(ValueError, match=r"VenueCapabilities\.native_iceberg"):
        VenueCapabilities(native_iceberg=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("display", "changes", "match"),
    [
        ("10", {}, "below the quantity 10"),
        ("0", {}, "display_quantity"),
        ("2", {"time_in_force": TimeInForce.IOC}, "must be GTC"),
        ("2", {"order_type": OrderType.MARKET, "price": None}, "only LIMIT orders"),
    ],
)
def test_an_iceberg_order_is_checked_where_it_is_built(
    display: str, changes: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        replace(order(quantity="10"), display_quantity=D(display), **changes)


@pytest.mark.parametrize(
    ("quantity", "approved"), [("1.5", False), ("0.001", False), ("2", True), ("2.000", True)]
)
def test_a_fractional_quantity_on_a_whole_units_venue_is_denied(
    quantity: str, approved: bool
) -> None:
    caps = VenueCapabilities(fractional_quantity=False)
    decision = engine().check_submit(order(quantity=quantity), RiskContext(), capabilities=caps)
    assert decision.approved is approved
    if not approved:
        assert decision.code is UNSUPPORTED
        assert f"fractional quantity {quantity} (whole units only)" in decision.reason


def test_a_modify_to_a_fractional_quantity_is_denied_on_a_whole_units_venue() -> None:
    caps = VenueCapabilities(fractional_quantity=False)
    original = order(quantity="3")
    modify = ModifyOrder(
        client_order_id=original.client_order_id,
        venue="v",
        symbol="BTCUSDT",
        quantity=D("2.5"),
        ts_ns=NOW,
    )
    decision = engine().check_modify(original, modify, RiskContext(), capabilities=caps)
    assert decision.code is UNSUPPORTED
    whole = replace(modify, quantity=D("2"))
    assert engine().check_modify(original, whole, RiskContext(), capabilities=caps).approved


def test_without_capabilities_nothing_is_refused_for_the_venue() -> None:
    """A venue the guard does not know is the OMS's to refuse (VENUE_UNAVAILABLE)."""
    for order_type in OrderType:
        assert engine().check_submit(order(order_type), RiskContext()).approved
    assert engine().check_submit(order(quantity="0.5"), RiskContext()).approved


def test_the_trading_state_is_named_before_the_venue_and_the_venue_before_the_limits() -> None:
    caps = VenueCapabilities(order_types=frozenset({OrderType.MARKET}))
    risk = RiskEngine(RiskLimits(max_order_quantity=D(1)), now_ns=lambda: NOW)
    too_big = order(OrderType.LIMIT, quantity="5")
    assert risk.check_submit(too_big, RiskContext(), capabilities=caps).code is UNSUPPORTED
    risk.set_state(TradingState.HALTED, "test", operator=True)
    halted = risk.check_submit(too_big, RiskContext(), capabilities=caps)
    assert halted.code is DenialCode.TRADING_HALTED


def test_the_new_code_is_the_risk_engines() -> None:
    assert UNSUPPORTED in RISK_DENIAL_CODES


def test_wrong_capabilities_deny_rather_than_crash() -> None:
    decision = engine().check_submit(order(), RiskContext(), capabilities="all")  # type: ignore[arg-type]
    assert decision.code is DenialCode.INVALID_ORDER


# -- client order ids ------------------------------------------------------------------------


def test_narrow_ids_fit_never_repeat_and_resume_after_restore() -> None:
    ids = ClientOrderIds("k3x9abexample0", rules=ALNUM16)
    issued = [ids.next() for _ in range(5_000)]
    assert all(_ALNUM16.fullmatch(coid) for coid in issued)
    assert all(CLIENT_ORDER_ID_PATTERN.fullmatch(coid) for coid in issued)
    assert len(set(issued)) == len(issued)
    assert all(ids.owns(coid) for coid in issued)
    # Deterministic: the same prefix and rule give the same ids.
    replay = ClientOrderIds("k3x9abexample0", rules=ALNUM16)
    assert [replay.next() for _ in range(5_000)] == issued
    # Resumed from the journaled counter, the next ids continue the sequence.
    resumed = ClientOrderIds("k3x9abexample0", rules=ALNUM16)
    resumed.restore(ids.peek_counter())
    more = [resumed.next() for _ in range(1_000)]
    assert not set(more) & set(issued)
    assert more == [ids.next() for _ in range(1_000)]
    assert all(_ALNUM16.fullmatch(coid) and resumed.owns(coid) for coid in more + issued)
    with pytest.raises(ValueError, match="repeat"):
        resumed.restore(3)


def test_narrow_ids_own_only_their_own_shape() -> None:
    ids = ClientOrderIds("k3x9abs10", rules=ALNUM16)
    first = ids.next()
    other = ClientOrderIds("k3x9abs11", rules=ALNUM16)
    assert ids.tag != other.tag and len(ids.tag) == len(other.tag)
    assert not other.owns(first)
    assert not ids.owns(ids.tag)  # no counter
    assert not ids.owns(f"{ids.tag}01")  # not how the counter is written
    assert not ids.owns("k3x9abs10-0")
    assert not ids.owns("manual")
    assert not ClientOrderIds("k3x9abs10").owns(first)


def test_the_longest_narrow_id_still_fits_and_then_the_counter_is_exhausted() -> None:
    ids = ClientOrderIds("k3x9abexample0", rules=ALNUM16)
    ids.restore(ids.max_counter)
    last = ids.next()
    assert len(last) == 16 and _ALNUM16.fullmatch(last) and ids.owns(last)
    assert ids.max_counter >= 62**8 - 1
    with pytest.raises(OverflowError):
        ids.next()
    with pytest.raises(ValueError, match="within"):
        ClientOrderIds("p", start=ids.max_counter + 2, rules=ALNUM16)


@pytest.mark.parametrize(
    "rules",
    [
        ClientIdRules.alphanumeric(COMPACT_MIN_LENGTH),
        ClientIdRules(12, string.digits),
        ClientIdRules(16, string.digits + string.ascii_lowercase),
        ClientIdRules(20, string.digits + string.ascii_uppercase + "_"),
        ClientIdRules.alphanumeric(32),
        ClientIdRules(30, _CORE_CHARS),
        ClientIdRules(64, string.ascii_letters + string.digits),
    ],
    ids=str,
)
def test_every_rule_gets_ids_it_allows_up_to_the_last_one(rules: ClientIdRules) -> None:
    ids = ClientOrderIds("zzzzzzAAAAAAAAAAzzz", rules=rules)
    issued = [ids.next() for _ in range(500)]
    ids.restore(ids.max_counter)
    issued.append(ids.next())
    assert len(set(issued)) == len(issued)
    assert all(rules.allows(coid) and CLIENT_ORDER_ID_PATTERN.fullmatch(coid) for coid in issued)
    assert ids.fits(rules)


def test_a_rule_too_narrow_for_unique_ids_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        ClientOrderIds("p", rules=ClientIdRules.alphanumeric(COMPACT_MIN_LENGTH - 1))


def test_where_the_venue_takes_the_default_shape_ids_are_unchanged_byte_for_byte() -> None:
    for rules in (BINANCE_CLIENT_ID_RULES, ClientIdRules(), ClientIdRules(40, _CORE_CHARS)):
        narrow = ClientOrderIds("tnnode1", start=250, rules=rules)
        plain = ClientOrderIds("tnnode1", start=250)
        assert not narrow.compact
        assert [narrow.next() for _ in range(3)] == ["tnnode1-fa", "tnnode1-fb", "tnnode1-fc"]
        assert [plain.next() for _ in range(3)] == ["tnnode1-fa", "tnnode1-fb", "tnnode1-fc"]
    # Binance refuses '.', so a prefix with one gets the compact shape there.
    dotted = ClientOrderIds("tn.node", rules=BINANCE_CLIENT_ID_RULES)
    assert dotted.compact and BINANCE_CLIENT_ORDER_ID.fullmatch(dotted.next())
    # A prefix too long for the separated shape is compact with rules, refused without.
    long = "p" * 20
    assert ClientOrderIds(long, rules=BINANCE_CLIENT_ID_RULES).compact
    with pytest.raises(ValueError, match="prefix"):
        ClientOrderIds(long)


def test_a_family_shares_one_counter_per_shape_and_owns_all_it_issued() -> None:
    family = ClientOrderIdFamily("k3x9abs10")
    binance = family.next(BINANCE_CLIENT_ID_RULES)
    core = family.next()
    okx = [family.next(ClientIdRules.alphanumeric(32)) for _ in range(3)]
    wide = [family.next(ClientIdRules.alphanumeric(40)) for _ in range(2)]
    # Another rule of the same shape (the core caps both at 36) shares the counter.
    same_shape = family.next(ClientIdRules.alphanumeric(36))
    sixteen = family.next(ALNUM16)
    assert [binance, core] == ["k3x9abs10-0", "k3x9abs10-1"]
    issued = [binance, core, *okx, *wide, same_shape, sixteen]
    assert len(set(issued)) == len(issued)
    assert family.for_rules(ClientIdRules.alphanumeric(40)) is family.for_rules(
        ClientIdRules.alphanumeric(36)
    )
    assert family.for_rules(BINANCE_CLIENT_ID_RULES) is family.default
    assert all(family.owns(coid) for coid in issued)
    assert not family.owns("k3x9abs10")
    assert [generator.peek_counter() for generator in family.generators()] == [2, 3, 3, 1]


# -- through a running node -------------------------------------------------------------------


def place(
    order_type: OrderType = OrderType.LIMIT,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    quantity: str = "0.1",
    price: str = "40000.00",
    post_only: bool = False,
    venue: str = "paper",
) -> Any:
    """A BUY that rests on the paper venues (last 50000): limits below the market,
    stops triggering above it, if-touched orders below it."""
    stop = "40000.00" if order_type.triggers_on_touch else "60000.00"

    def action(ctx: StrategyContext) -> str:
        return ctx.submit_order(
            "BTCUSDT",
            BUY,
            D(quantity),
            order_type=order_type,
            price=D(price) if order_type.needs_price else None,
            stop_price=D(stop) if order_type.needs_stop_price else None,
            trailing_offset=D("100") if order_type is OrderType.TRAILING_STOP else None,
            time_in_force=tif,
            expire_time_ns=ctx.now_ns() + 3_600 * 10**9 if tif is TimeInForce.GTD else None,
            post_only=post_only,
            venue=venue,
        )

    return action


def declare(h: Harness, venue: str, **changes: Any) -> VenueCapabilities:
    """Give ``venue`` other capabilities, as an adapter would declare them."""
    entry = h.node.directory.venue(venue)
    assert entry is not None
    capabilities = replace(entry.capabilities, **changes)
    h.node.directory.register_venue(replace(entry, capabilities=capabilities))
    return capabilities


def assert_unsupported(h: Harness, coid: str, *words: str) -> OrderDenied:
    """Denied UNSUPPORTED_BY_VENUE with ``words`` in the reason; DENIED in the OMS; no venue saw it."""
    denial = h.wait_for(OrderDenied, coid)[0]
    assert isinstance(denial, OrderDenied)
    assert denial.code is UNSUPPORTED, denial
    for word in words:
        assert word in denial.reason, (word, denial.reason)
    assert h.order(coid).status is OrderStatus.DENIED
    for name, venue in h.node.venues.items():
        assert venue.order(coid) is None, f"{coid} reached {name}"
    return denial


ANSWERS: frozenset[type] = frozenset(
    {OrderAccepted, OrderRejected, OrderFilled, OrderExpired, OrderCanceled, OrderDenied}
)


def first_answer(h: Harness, coid: str) -> type:
    """The kind of the first answer the strategy hears about ``coid``."""
    event = h.events().wait_for(
        lambda m: type(m) in ANSWERS and getattr(m, "client_order_id", None) == coid
    )[0]
    return type(event)


def test_a_venue_without_ioc_denies_an_ioc_order_logs_counts_and_trades_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tradenode.risk")
    with running_node() as h:
        declare(h, "paper2", time_in_force=frozenset({TimeInForce.GTC}))
        h.strategy()
        coid = h.do(place(tif=TimeInForce.IOC, venue="paper2"))
        assert_unsupported(h, coid, "venue paper2", "time in force IOC", "(supported: GTC)")
        assert h.node.risk.ask(GetRiskStatus())["denials"] == {"UNSUPPORTED_BY_VENUE": 1}
        assert any(
            coid in record.getMessage() and "UNSUPPORTED_BY_VENUE" in record.getMessage()
            for record in caplog.records
        )
        # Never fatal: the same strategy trades on, there and elsewhere.
        accepted = h.do(place(venue="paper2"))
        h.wait_for(OrderAccepted, accepted)
        ioc_elsewhere = h.do(place(tif=TimeInForce.IOC, venue="paper"))
        assert first_answer(h, ioc_elsewhere) is not OrderDenied


def test_a_venue_without_post_only_or_fractions_denies_them_before_sending() -> None:
    with running_node() as h:
        declare(h, "paper2", post_only=False, fractional_quantity=False)
        h.strategy()
        maker = h.do(place(post_only=True, venue="paper2"))
        assert_unsupported(h, maker, "post-only")
        fraction = h.do(place(quantity="0.1", venue="paper2"))
        assert_unsupported(h, fraction, "fractional quantity 0.1")
        status = h.node.risk.ask(GetRiskStatus())
        assert status["denials"] == {"UNSUPPORTED_BY_VENUE": 2}
        maker_on_paper = h.do(place(post_only=True, venue="paper"))
        h.wait_for(OrderAccepted, maker_on_paper)


def test_a_strategy_sees_what_its_venues_declare() -> None:
    with running_node() as h:
        declared = declare(h, "paper2", order_types=frozenset({OrderType.LIMIT}))
        assert h.do(lambda ctx: ctx.venue_capabilities("paper2")) == declared
        paper = h.do(lambda ctx: ctx.venue_capabilities())
        assert isinstance(paper, VenueCapabilities) and OrderType.STOP in paper.order_types
        assert h.do(lambda ctx: ctx.venue_capabilities("nowhere")) is None


def test_strategy_ids_follow_each_venues_rule_across_orders_replacements_and_restarts() -> None:
    with running_node() as h:
        declare(h, "paper2", client_ids=ALNUM16)
        h.strategy()
        narrow = [h.do(place(price=f"{39000 + n}.00", venue="paper2")) for n in range(40)]
        for coid in narrow:
            h.wait_for(OrderAccepted, coid)
        assert all(_ALNUM16.fullmatch(coid) for coid in narrow), narrow
        assert len(set(narrow)) == len(narrow)
        # paper2 replaces on modify: the replacement's id follows the rule too.
        replacement = h.do(lambda ctx: ctx.modify_order(narrow[0], price=D("38000.00")))
        assert isinstance(replacement, str) and _ALNUM16.fullmatch(replacement)
        assert replacement not in narrow
        h.wait_for(OrderAccepted, replacement)
        # The default venue keeps the default shape.
        wide = h.do(place(venue="paper"))
        h.wait_for(OrderAccepted, wide)
        assert re.fullmatch(r"[0-9a-z]{1,6}s11-[0-9a-f]+", wide), wide

        def boom(ctx: StrategyContext) -> None:
            raise RuntimeError("strategy bug")

        with pytest.raises(RuntimeError, match="strategy bug"):
            h.do(boom)
        # The next incarnation draws from a new prefix: still within the rule, never repeating.
        after = [h.do(place(price=f"{37000 + n}.00", venue="paper2")) for n in range(20)]
        for coid in after:
            h.wait_for(OrderAccepted, coid)
        assert all(_ALNUM16.fullmatch(coid) for coid in after), after
        assert not set(after) & {*narrow, replacement}
        assert len(set(after)) == len(after)


def test_a_venue_without_quotes_is_not_asked_for_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tradenode.strategy")
    with running_node() as h:
        declare(h, "paper", market_data=frozenset({MarketDataKind.TRADES}))
        h.strategy(symbols=("BTCUSDT",))
        h.sync()
        assert any("delivers no quotes" in record.getMessage() for record in caplog.records)


def test_the_max_counter_bound_is_unchanged_for_the_default_shape() -> None:
    assert ClientOrderIds("p").max_counter == MAX_COUNTER
