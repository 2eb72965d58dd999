"""The randomized exactly-once campaign (``tradenode.testing.campaign``, ``tradenode drill``).

The long tests run the campaign itself: a node killed again and again (SIGKILL at
seeded moments, crash points, a placement held by the venue past the node's
death) against the local Binance venue in another process, with the venue's
faults and per-incarnation timing settings, then checked against the venue's
books. They replace the original crash drill (tests/test_crash_recovery.py),
whose every assertion is one of the campaign's invariants. ``pytest -m crash``
runs them alone. The short tests pin the plan, the checks and the command line
without starting any process but ``tradenode --help``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tradenode.actors import OmsState
from tradenode.journal import FsyncMode, FsyncPolicy
from tradenode.messages import OrderFilled, OrderRejected, OrderType, Side, SubmitOrder
from tradenode.testing import campaign
from tradenode.testing.campaign import (
    INVARIANTS,
    BinanceCampaignVenue,
    CampaignSummary,
    Death,
    VenueBooks,
    plan_campaign,
    run_campaign,
)

# The campaign's invariant checks are internal: each is tested here on hand-made books.
from tradenode.testing.campaign._invariants import (
    check_deaths,
    check_fills_exactly_once,
    check_held_placements,
    check_logical_orders_not_overfilled,
    check_no_secret_in_files,
    check_one_order_per_client_id,
    check_open_orders_agree,
    check_positions_match_balances,
)
from tradenode.testing.conformance import VenueFill, VenueOrder

SEEDS = [7, pytest.param(20261129, marks=pytest.mark.slow)]
"""The original crash drill's seeds: CI runs the first; ``-m crash`` or ``-m slow`` both."""


def _report(summary: CampaignSummary) -> str:
    lines = [f"seed {summary.seed}, workdir {summary.workdir}"]
    lines += [result.line() for result in summary.invariants]
    return "\n".join(lines)


# ------------------------------------------------------------ the campaign


@pytest.mark.crash
@pytest.mark.timeout(400)
@pytest.mark.parametrize("seed", SEEDS, ids=["seed7", "seed20261129"])
def test_random_campaign_nothing_lost_or_doubled(seed: int, tmp_path: Path) -> None:
    summary = run_campaign(BinanceCampaignVenue(), seed=seed, workdir=tmp_path, incarnations=5)
    assert [result.name for result in summary.invariants] == list(INVARIANTS)
    assert summary.passed, _report(summary)
    deaths = {record.plan.death.partition(":")[0] for record in summary.incarnations}
    assert deaths == {"kill", "held", "after_intent", "after_send", "before_fill_journaled"}
    assert (tmp_path / "summary.json").is_file()


@pytest.mark.crash
@pytest.mark.timeout(300)
def test_a_placement_held_past_the_nodes_death_ends_as_one_order(tmp_path: Path) -> None:
    summary = run_campaign(
        BinanceCampaignVenue(), seed=11, workdir=tmp_path, scenario="held-placement"
    )
    (record,) = summary.incarnations
    assert record.plan.hold == 4.5
    assert record.plan.settings.fields["recv_window_ms"] == 5000
    assert record.returncode == -9
    (held,) = record.held_at_kill
    assert held, record.injected
    assert held in record.in_flight  # the dead node's journal left it pending
    # What this case is about; the random campaigns above assert every invariant.
    for name in (
        "held_placements_once",
        "one_order_per_client_id",
        "fills_exactly_once",
        "open_orders_agree",
        "positions_match_balances",
        "journal_sound",
        "deaths_as_planned",
        "no_secret_in_files",
    ):
        assert summary.result(name).passed, _report(summary)


# ------------------------------------------------------------- the plan


def test_the_plan_is_the_seeds_and_keeps_the_timeouts_legal() -> None:
    venue = BinanceCampaignVenue()
    plan = plan_campaign(venue, "random", 5, 12)
    assert plan == plan_campaign(venue, "random", 5, 12)
    assert plan != plan_campaign(venue, "random", 6, 12)
    assert {p.death.partition(":")[0] for p in plan} >= {
        "kill",
        "held",
        "after_intent",
        "after_send",
        "before_fill_journaled",
    }
    http_shorter = 0
    for incarnation in plan:
        window = incarnation.settings.acceptance_window
        assert window == incarnation.settings.fields["recv_window_ms"] / 1000
        assert incarnation.breaker_timeout >= window + 1
        http_shorter += incarnation.settings.fields["request_timeout"] < window
        if incarnation.death == "held":
            assert incarnation.hold is not None and incarnation.kill_after is not None
            assert incarnation.hold < window
            assert incarnation.kill_after < incarnation.hold
    assert http_shorter, "no incarnation with an HTTP timeout shorter than the recvWindow"
    kills = plan_campaign(venue, "kills", 20261129, 8)
    assert [p.death.partition(":")[0] for p in kills] == [
        "kill",
        "after_intent",
        "kill",
        "after_send",
        "before_fill_journaled",
        "kill",
        "after_intent",
        "kill",
    ]
    assert all(not p.before and not p.during for p in kills)
    with pytest.raises(ValueError, match="scenario"):
        plan_campaign(venue, "chaos", 1, 1)


def test_the_node_config_carries_secrets_only_as_env_references(tmp_path: Path) -> None:
    venue = BinanceCampaignVenue()
    venue._urls = {"rest": "http://x", "ws_api": "ws://x/ws-api/v3", "stream": "ws://x"}
    (secret,) = venue.secrets
    settings = venue.draw_settings(None)
    config = campaign.node_config(venue, settings, 6.0, tmp_path / "journal", trading=True)
    text = repr(config)
    assert secret not in text
    binance = config["venues"][0]["binance"]
    assert binance["api_secret"] == "${CAMPAIGN_BINANCE_SECRET}"
    assert venue.node_environment()["CAMPAIGN_BINANCE_SECRET"] == secret
    assert config["venues"][0]["breaker"]["request_timeout"] == 6.0
    assert FsyncPolicy.parse(config["journal"]["fsync"]).mode is FsyncMode.GROUP


def test_the_campaign_imports_no_broker_adapter() -> None:
    code = (
        "import sys, tradenode.testing.campaign;"
        "print(sorted(m for m in sys.modules if m.startswith('tradenode.brokers')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_public_names() -> None:
    assert sorted(campaign.__all__) == sorted(
        [
            "CRASH_POINTS",
            "INVARIANTS",
            "PLACEMENTS",
            "SCENARIOS",
            "VENUES",
            "BinanceCampaignVenue",
            "CampaignSummary",
            "CampaignVenue",
            "Death",
            "FaultAction",
            "FaultStep",
            "IncarnationPlan",
            "IncarnationRecord",
            "InvariantResult",
            "VenueBooks",
            "VenueSettings",
            "journal_problems",
            "node_config",
            "plan_campaign",
            "replay_journal",
            "run_campaign",
        ]
    )
    for name in campaign.__all__:
        assert hasattr(campaign, name), name


# ------------------------------------------------------------- the checks


def _order(cid: str, *, status: str = "FILLED", order_id: str = "1") -> VenueOrder:
    return VenueOrder(
        client_order_id=cid,
        order_id=order_id,
        symbol="BTCUSDT",
        side="BUY",
        status=status,
        is_open=status in ("NEW", "PARTIALLY_FILLED"),
        quantity=Decimal("0.01"),
        filled_quantity=Decimal("0.01") if status == "FILLED" else Decimal(0),
    )


def _fill(execution: str, cid: str) -> VenueFill:
    return VenueFill(
        execution_id=execution,
        client_order_id=cid,
        order_id="1",
        symbol="BTCUSDT",
        side="BUY",
        quantity=Decimal("0.01"),
        price=Decimal(50_000),
    )


def _state(*fills: tuple[str, str]) -> OmsState:
    """A journal-side state with one MARKET buy per client id, filled by ``fills``."""
    state = OmsState()
    for cid in dict.fromkeys(cid for cid, _ in fills):
        state.register(
            SubmitOrder(
                client_order_id=cid,
                strategy_id="drill",
                venue="binance",
                symbol="BTCUSDT",
                side=Side.BUY,
                order_type=OrderType.MARKET,
                quantity=Decimal("0.02"),
            ),
            0,
        )
        state.mark_submitted(cid, 0)
    for cid, execution in fills:
        state.apply(
            OrderFilled(
                client_order_id=cid,
                venue="binance",
                venue_order_id="1",
                execution_id=execution,
                symbol="BTCUSDT",
                side=Side.BUY,
                last_quantity=Decimal("0.01"),
                last_price=Decimal(50_000),
            ),
            0,
        )
    return state


def test_fill_checks_name_the_lost_and_the_extra_executions(tmp_path: Path) -> None:
    state = _state(("a-1", "binance-BTCUSDT-1"), ("a-1", "binance-BTCUSDT-9"))
    books = VenueBooks(
        orders=(_order("a-1"), _order("b-2", order_id="2")),
        fills=(_fill("binance-BTCUSDT-1", "a-1"), _fill("binance-BTCUSDT-2", "b-2")),
        balances={},
        submissions={"a-1": 1, "b-2": 1},
    )
    result = check_fills_exactly_once(state, books, "binance", tmp_path)
    assert not result.passed
    assert "1 lost: binance-BTCUSDT-2 (b-2)" in result.detail
    assert "1 extra: binance-BTCUSDT-9 (a-1)" in result.detail
    assert result.details_file is not None
    written = result.details_file.read_text()
    assert '"execution_id": "binance-BTCUSDT-2"' in written
    assert '"client_order_id": "b-2"' in written
    assert result.line().startswith("FAIL fills_exactly_once: ")
    same = dataclasses.replace(books, fills=(_fill("binance-BTCUSDT-1", "a-1"),))
    assert not check_fills_exactly_once(state, same, "binance", tmp_path).passed
    exact = dataclasses.replace(
        books, fills=(_fill("binance-BTCUSDT-1", "a-1"), _fill("binance-BTCUSDT-9", "a-1"))
    )
    assert check_fills_exactly_once(state, exact, "binance", tmp_path).passed


def test_order_checks_name_the_client_ids_placed_twice_or_disagreeing(tmp_path: Path) -> None:
    state = _state(("a-1", "binance-BTCUSDT-1"))
    books = VenueBooks(
        orders=(_order("a-1"), _order("a-1", status="NEW", order_id="2"), _order("c-3")),
        fills=(),
        balances={"BTC": Decimal("10.01")},
        submissions={"a-1": 2, "c-3": 1},
    )
    twice = check_one_order_per_client_id(state, books, tmp_path)
    assert not twice.passed
    assert twice.detail.startswith("1 client order ids placed more than once: a-1 (submissions 2")
    never = check_one_order_per_client_id(
        state, dataclasses.replace(books, submissions={}), tmp_path
    )
    assert not never.passed
    assert "never traded" in never.detail
    agree = check_open_orders_agree(state, books, tmp_path)
    assert agree.passed, agree.detail  # a-1 is open (partly filled) on both sides
    apart = dataclasses.replace(books, orders=(_order("a-1"), _order("c-3", status="NEW")))
    agree = check_open_orders_agree(state, apart, tmp_path)
    assert not agree.passed
    assert agree.detail == (
        "2 disagree: a-1 (open in the journal, not open at the venue), "
        "c-3 (open at the venue, unknown to the journal)"
    )
    positions = check_positions_match_balances(
        state,
        books,
        "binance",
        tmp_path,
        symbols={"BTCUSDT": "BTC"},
        initial={"BTC": Decimal(10)},
    )
    assert positions.passed, positions.detail
    off = check_positions_match_balances(
        state,
        books,
        "binance",
        tmp_path,
        symbols={"BTCUSDT": "BTC"},
        initial={"BTC": Decimal(9)},
    )
    assert not off.passed
    assert "BTCUSDT: journal 0.01" in off.detail
    held = check_held_placements([("incarnation 2", ("a-1",))], state, books, tmp_path)
    assert not held.passed
    assert held.detail.startswith("a-1: 2 venue orders, 2 placements")
    assert check_held_placements([("incarnation 2", ("c-3",))], state, books, tmp_path).passed
    # Held past its deadline, the venue refused it: no order, and the journal must know.
    unknown = check_held_placements([("incarnation 2", ("z-9",))], state, books, tmp_path)
    assert unknown.detail == "z-9: no venue order, but the journal has it unknown"
    state.register(
        SubmitOrder(
            client_order_id="z-9",
            strategy_id="drill",
            venue="binance",
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            quantity=Decimal("0.01"),
        ),
        0,
    )
    state.mark_submitted("z-9", 1)
    pending = check_held_placements([("incarnation 2", ("z-9",))], state, books, tmp_path)
    assert pending.detail == "z-9: no venue order, but the journal has it SUBMITTED"
    state.apply(
        OrderRejected(client_order_id="z-9", venue="binance", code="CIRCUIT_OPEN", reason="open"),
        2,
    )
    refused = check_held_placements([("incarnation 2", ("z-9",))], state, books, tmp_path)
    assert refused.passed, refused.detail
    directed = check_held_placements(
        [("incarnation 1", ("z-9",))], state, books, tmp_path, directed=True
    )
    assert directed.detail.startswith("z-9: no venue order (held inside the acceptance window")
    missed = check_held_placements([("incarnation 1", ())], state, books, tmp_path, directed=True)
    assert missed.detail == "incarnation 1: the hold caught no placement before the kill"
    assert check_held_placements([("incarnation 2", ())], state, books, tmp_path).passed


def test_a_replacement_that_fills_after_its_predecessor_did_is_an_overfill(
    tmp_path: Path,
) -> None:
    def limit(cid: str) -> SubmitOrder:
        return SubmitOrder(
            client_order_id=cid,
            strategy_id="drill",
            venue="binance",
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=Decimal("0.01"),
            price=Decimal(49_000),
        )

    def filled(cid: str, execution: str) -> OrderFilled:
        return OrderFilled(
            client_order_id=cid,
            venue="binance",
            venue_order_id=cid,
            execution_id=execution,
            symbol="BTCUSDT",
            side=Side.BUY,
            last_quantity=Decimal("0.01"),
            last_price=Decimal(49_000),
        )

    state = OmsState()
    state.register(limit("a-1"), 0)
    state.mark_submitted("a-1", 1)
    state.mark_pending_replace("a-1", 2)
    state.link_replacement("a-1", limit("a-2"), 3)
    state.mark_submitted("a-2", 4)
    state.apply(filled("a-1", "binance-BTCUSDT-1"), 5)
    books = VenueBooks(
        orders=(_order("a-1"), _order("a-2", order_id="2")),
        fills=(_fill("binance-BTCUSDT-1", "a-1"), _fill("binance-BTCUSDT-2", "a-2")),
        balances={},
        submissions={"a-1": 1, "a-2": 1},
    )
    assert check_logical_orders_not_overfilled(state, books, tmp_path).passed
    state.apply(filled("a-2", "binance-BTCUSDT-2"), 6)
    result = check_logical_orders_not_overfilled(state, books, tmp_path)
    assert not result.passed
    assert result.detail == "1 overfilled: a-1 > a-2 filled 0.02 of 0.01"
    assert result.details_file is not None
    assert '"binance-BTCUSDT-2"' in result.details_file.read_text()


def test_deaths_and_secrets(tmp_path: Path) -> None:
    deaths = [
        Death("incarnation 1", "kill", -9, (-9,)),
        Death("incarnation 2", "after_send:3", 86, (86,)),
        Death("settle 1", "clean", 0, (0,)),
    ]
    assert check_deaths(deaths, tmp_path).passed
    wrong = check_deaths([*deaths, Death("incarnation 3", "after_intent:5", -9, (86,))], tmp_path)
    assert not wrong.passed
    assert "incarnation 3 after_intent:5 -> -9" in wrong.detail
    secret = "campaign-secret-0123456789abcdef"
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "node.yaml").write_text("api_secret: ${CAMPAIGN_BINANCE_SECRET}\n")
    assert check_no_secret_in_files([secret], clean).passed
    (clean / "journal").mkdir()
    (clean / "journal" / "segment-1.tnj").write_bytes(b"\x00\x01" + secret.encode() + b"\xff")
    leaked = check_no_secret_in_files([secret], clean)
    assert not leaked.passed
    assert "segment-1.tnj" in leaked.detail


# --------------------------------------------------------- command line


def test_drill_help_and_usage_errors() -> None:
    def drill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tradenode", "drill", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    shown = drill("--help")
    assert shown.returncode == 0, shown.stderr
    for option in ("--seed", "--seeds", "--incarnations", "--scenario", "--workdir", "binance"):
        assert option in shown.stdout
    assert "held-placement" in shown.stdout
    assert drill("okx", "--seed", "1").returncode == 2
    both = drill("binance", "--seed", "1", "--seeds", "1-2")
    assert both.returncode == 2
    assert "not both" in both.stderr
    backwards = drill("binance", "--seeds", "5-2")
    assert backwards.returncode == 2
    assert "empty" in backwards.stderr
