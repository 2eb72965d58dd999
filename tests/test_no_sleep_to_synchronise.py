"""Tests wait for events, not for time: no sleep stands in for synchronisation.

A sleep that polls a state is a guess at how long something takes; on a
loaded CI machine it either wastes time or, bounded too tightly, fails. The
fake venues note every change a test may wait for (:class:`ChangeSignal`,
``LoopbackVenue.wait_for``), the node's recorders wake on every event, and
its quiescence barrier waits for the actors. What is left is a poll of
*another process* (a drill's child node), which shares no event with the
test; each such line says so with ``# sleep-ok:``.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from tradenode.testing.venues import OkxVenue

# The signal is the fakes' private machinery; its guarantees are tested here directly.
from tradenode.testing.venues._changes import ChangeSignal

REPO = Path(__file__).resolve().parents[1]

#: Where a sleep would be a test's synchronisation: the tests, and the test helpers the
#: package ships. The fake venues' own sleeps (heartbeats, delay knobs, tickers) are the
#: venue's behaviour, not a wait, and are left out.
_SCANNED = (REPO / "tests", REPO / "src" / "tradenode" / "testing")
_VENUE_BEHAVIOUR = REPO / "src" / "tradenode" / "testing" / "venues"


def _sleeps(path: Path) -> Iterator[tuple[int, str]]:
    """(line, source line) of every ``time.sleep``/``asyncio.sleep``/``trio.sleep``/``sleep``
    call in ``path`` whose argument is not the literal 0 (a bare yield to the scheduler)."""
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source, str(path))):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        named = (
            isinstance(function, ast.Attribute)
            and function.attr == "sleep"
            and isinstance(function.value, ast.Name)
            and function.value.id in {"time", "asyncio", "trio"}
        ) or (isinstance(function, ast.Name) and function.id == "sleep")
        if not named:
            continue
        if node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == 0:
            continue
        yield node.lineno, lines[node.lineno - 1]


def test_the_only_sleeps_left_poll_another_process() -> None:
    offending = []
    for root in _SCANNED:
        for path in sorted(root.rglob("*.py")):
            if path.is_relative_to(_VENUE_BEHAVIOUR) or path == Path(__file__):
                continue
            for number, line in _sleeps(path):
                if "# sleep-ok:" not in line or "another process" not in line:
                    offending.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offending, "sleeps used to synchronise:\n" + "\n".join(offending)


def test_the_scan_finds_a_polling_sleep(tmp_path: Path) -> None:
    """The scan above is not vacuous: it sees the shapes a poll takes."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time, asyncio, trio\n"
        "from time import sleep\n"
        "time.sleep(0.01)\n"  # sleep-ok: text the scan reads, not a call
        "async def f():\n"
        "    await asyncio.sleep(0.5)\n"
        "    await trio.sleep(1)\n"  # sleep-ok: text the scan reads, not a call
        "    await trio.sleep(0)\n"  # sleep-ok: text the scan reads, not a call
        "sleep(2)\n"
        "time.sleep(0.1)  # sleep-ok: polls another process's file\n"
    )
    assert sorted(number for number, _ in _sleeps(sample)) == [3, 5, 6, 8, 9]


# -- the signal ---------------------------------------------------------------------------


def test_a_wait_returns_once_a_noted_change_makes_the_predicate_hold() -> None:
    signal = ChangeSignal("the fake Test")
    state = {"ready": False}
    checked = threading.Event()
    checks = 0

    def ready() -> bool:
        nonlocal checks
        checks += 1
        checked.set()
        return state["ready"]

    def change() -> None:
        assert checked.wait(10)  # the waiter has looked once and found it false
        state["ready"] = True
        signal.note()

    changer = threading.Thread(target=change)
    changer.start()
    signal.wait_for(ready, timeout=30, what="ready")
    changer.join()
    assert state["ready"] and checks >= 2 and signal.count == 1


def test_a_change_noted_while_the_predicate_runs_is_not_missed() -> None:
    """The race a bare ``Condition.wait`` after a false check would lose: the change lands
    between the check and the wait. Here it lands inside the check, deterministically; the
    wait must look again at once rather than sleep until the timeout (which, at 30 s, a
    lost wake-up would reach and fail on)."""
    signal = ChangeSignal("the fake Test")
    answers = iter([False, True])

    def changes_while_checked() -> bool:
        answer = next(answers)
        if not answer:
            signal.note()  # as the venue's thread would, concurrently
        return answer

    signal.wait_for(changes_while_checked, timeout=30)
    assert signal.count == 1


def test_a_wait_that_never_holds_raises_timeout_naming_the_venue_and_the_condition() -> None:
    signal = ChangeSignal("the fake Test")
    with pytest.raises(TimeoutError, match=r"the fake Test: condition \(subscribed\) not met"):
        signal.wait_for(lambda: False, timeout=0, what="subscribed")
    assert "changes=0" in repr(signal)


# -- a venue's waits ----------------------------------------------------------------------


def test_a_fake_venue_wakes_a_wait_when_a_client_subscribes() -> None:
    """End to end over loopback: a raw WebSocket client subscribes on the fake OKX, and
    a wait on another thread, blocked before the client connected, returns on that
    change (the signal's count shows the venue noted it)."""
    with OkxVenue() as venue:
        before = venue._changes.count
        outcome: list[BaseException | None] = []

        def wait() -> None:
            try:
                venue.wait_for(
                    lambda: ("public", "tickers") in venue.subscriptions(), 30.0, "tickers"
                )
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

        waiting = threading.Thread(target=wait)
        waiting.start()

        async def subscribe() -> None:
            async with open_websocket_url(venue.ws_public_url) as ws:
                await ws.send_message(
                    '{"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]}'
                )
                assert '"event":"subscribe"' in (await ws.get_message()).replace(" ", "")
                await trio.to_thread.run_sync(waiting.join)

        trio.run(subscribe)
        assert outcome == [None]
        assert venue._changes.count > before
