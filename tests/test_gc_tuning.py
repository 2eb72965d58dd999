"""The collector's settings while nodes run (``node.gc``): applied by the first node to
start, put back by the last to stop, and off when the config says so."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tradenode import ConfigError, parse_config

# The node section's model, to build holds from a config as a node does.
from tradenode._config import GcConfig

# The process-wide hold is what is under test; a node takes it, a test needs its own.
from tradenode._gc import PROCESS_COLLECTOR, Collector, GcHold

from ._node_helpers import running_node

# The defaults a node applies (``GcConfig``).
TUNED_YOUNG = 20_000


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """Whatever a test leaves, the collector is as it found it (another test's
    settings must not leak)."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)


def config(text: str = "") -> GcConfig:
    return parse_config("node:\n  name: gc-test\n" + text).node.gc


def test_a_hold_applies_the_young_threshold_and_puts_back_what_it_found() -> None:
    gc.set_threshold(650, 9, 11)
    hold = GcHold(config(), Collector())
    hold.engage()
    assert gc.get_threshold() == (TUNED_YOUNG, 9, 11)
    assert hold.engaged
    hold.release()
    assert gc.get_threshold() == (650, 9, 11)
    assert not hold.engaged


def test_the_settings_stay_until_the_last_holder_lets_go() -> None:
    gc.set_threshold(700, 10, 10)
    collector = Collector()
    first, second = GcHold(config(), collector), GcHold(config(), collector)
    first.engage()
    second.engage()
    assert collector.holders == 2
    first.release()
    assert gc.get_threshold()[0] == TUNED_YOUNG and collector.holders == 1
    second.release()
    assert gc.get_threshold() == (700, 10, 10) and collector.holders == 0


def test_engage_and_release_are_idempotent() -> None:
    gc.set_threshold(700, 10, 10)
    collector = Collector()
    hold = GcHold(config(), collector)
    hold.engage()
    hold.engage()
    assert collector.holders == 1
    hold.release()
    hold.release()
    assert collector.holders == 0 and gc.get_threshold() == (700, 10, 10)


def test_a_config_that_leaves_the_collector_alone_changes_nothing() -> None:
    gc.set_threshold(700, 10, 10)
    hold = GcHold(config("  gc:\n    young_threshold: null\n"), Collector())
    hold.engage()
    assert gc.get_threshold() == (700, 10, 10)
    hold.release()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_chosen_young_threshold_is_the_one_applied() -> None:
    hold = GcHold(config("  gc:\n    young_threshold: 5000\n"), Collector())
    hold.engage()
    try:
        assert gc.get_threshold()[0] == 5000
    finally:
        hold.release()


@pytest.mark.parametrize("bad", ["young_threshold: 0", "young_threshold: -1", "young: 5"])
def test_a_broken_gc_section_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        config(f"  gc:\n    {bad}\n")


def test_a_running_node_holds_the_collector_and_its_stop_lets_go() -> None:
    if PROCESS_COLLECTOR.holders:
        pytest.skip("a node another test left running holds the collector")
    gc.set_threshold(700, 10, 10)
    with running_node():
        assert gc.get_threshold() == (TUNED_YOUNG, 10, 10)
        assert PROCESS_COLLECTOR.holders == 1
    assert gc.get_threshold() == (700, 10, 10)
    assert PROCESS_COLLECTOR.holders == 0


def test_a_node_whose_stop_fails_still_lets_go(monkeypatch: pytest.MonkeyPatch) -> None:
    if PROCESS_COLLECTOR.holders:
        pytest.skip("a node another test left running holds the collector")
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError, match="router control"), running_node() as harness:
        assert gc.get_threshold() == (TUNED_YOUNG, 10, 10)

        def broken() -> None:
            raise RuntimeError("router control would not close")

        monkeypatch.setattr(harness.node._router_control, "close", broken)
    assert gc.get_threshold() == (700, 10, 10)
    assert PROCESS_COLLECTOR.holders == 0
