from __future__ import annotations

import logging
from collections.abc import Iterator

import pykka
import pytest

from tradenode.supervision import ActorSystem, EventRecorder, ManualClock

_OPT_IN = {
    "live": ("live venue test: opt in with -m live", ("live",)),
    "slow": ("a drill's extra seed: opt in with -m slow or -m crash", ("slow", "crash")),
}

#: Tests that take tens of seconds: processes SIGKILLed against a venue process
#: (``crash``), the conformance suite's out-of-process campaigns, the wheel's build.
_LONG_NAMES = ("randomized_campaign_out_of_process", "test_wheel_install.py", "_drill")


def _long(item: pytest.Item) -> bool:
    return "crash" in item.keywords or any(name in item.nodeid for name in _LONG_NAMES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests against real venues (``-m live``) and drills' extra seeds (``-m slow``)
    run only when asked for. The long drills go first: the workers start on them
    while the short tests fill in around them, instead of one worker finishing a
    campaign alone at the end."""
    selected = config.getoption("markexpr") or ""
    for marker, (reason, opting_in) in _OPT_IN.items():
        if any(word in selected for word in opting_in):
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
    items.sort(key=lambda item: not _long(item))


@pytest.fixture(autouse=True)
def _stop_every_actor() -> Iterator[None]:
    """No test leaks a running actor into the next one."""
    yield
    leftovers = pykka.ActorRegistry.get_all()
    pykka.ActorRegistry.stop_all(block=True, timeout=10)
    assert not leftovers or all(not ref.is_alive() for ref in leftovers)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def system(clock: ManualClock) -> Iterator[ActorSystem]:
    actor_system = ActorSystem(clock=clock, seed=7)
    yield actor_system
    actor_system.shutdown(timeout=10)


@pytest.fixture
def events(system: ActorSystem) -> EventRecorder:
    recorder = EventRecorder()
    system.events.subscribe(recorder)
    return recorder


@pytest.fixture
def dead_letters(system: ActorSystem) -> EventRecorder:
    recorder = EventRecorder()
    system.dead_letters.subscribe(recorder)
    return recorder


@pytest.fixture(autouse=True)
def _quiet_expected_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tradenode")
