"""ActorSystem.wait_quiescent: every mailbox empty, no handler running, no I/O in flight."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
    SupervisorSpec,
    add_child,
)

from ._supervision_helpers import Gate, Journal, is_event, wait_running, worker

K = SupervisionEventKind


def _root(system: ActorSystem, events: EventRecorder, *children: ChildSpec) -> Address:
    root = system.start(SupervisorSpec("root", children=children))
    for child in children:
        wait_running(system, events, f"/root/{child.name}")
    return root


def _one(system: ActorSystem, events: EventRecorder, child: ChildSpec) -> Address:
    system.start(SupervisorSpec("root", children=(child,)))
    return wait_running(system, events, f"/root/{child.name}")


def _fan_out(hops: int, payload: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """Where a relay sends ``(hops, payload)`` on: one or two messages, decided by the payload."""
    return [(hops - 1, (*payload, n)) for n in range(1 + sum(payload) % 2)]


def _leaves(hops: int, payload: tuple[int, ...]) -> int:
    if hops == 0:
        return 1
    return sum(_leaves(*onward) for onward in _fan_out(hops, payload))


class Relay(Actor):
    """Passes ``(hops, payload)`` on to other relays; the last hop journals ``payload``."""

    def __init__(self, journal: Journal, peers: list[Address]) -> None:
        self.journal = journal
        self.peers = peers

    def receive(self, message: Any) -> Any:
        hops, payload = message
        if hops == 0:
            self.journal(payload)
            return None
        for onward in _fan_out(hops, payload):
            self.peers[(sum(onward[1]) + hops) % len(self.peers)].tell(onward)
        return None


def test_quiescence_waits_for_every_message_a_message_causes(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    peers: list[Address] = []
    specs = [ChildSpec(f"r{n}", lambda: Relay(journal, peers)) for n in range(6)]
    _root(system, events, *specs)
    peers.extend(a for a in (system.lookup(f"/root/r{n}") for n in range(6)) if a is not None)
    assert len(peers) == 6
    expected = 0
    for round_ in range(20):
        peers[round_ % len(peers)].tell((10, (round_,)))
        expected += _leaves(10, (round_,))
        system.wait_quiescent()
        # Everything the one message set off has arrived, without waiting on any of it.
        assert len(journal.items) == expected
        assert system.is_quiescent


def test_a_running_handler_is_not_quiescent_until_it_returns(
    system: ActorSystem, events: EventRecorder
) -> None:
    gate = Gate()
    journal = Journal()

    class Blocking(Actor):
        def receive(self, message: Any) -> Any:
            gate.block()
            journal(message)

    address = _one(system, events, ChildSpec("b", Blocking))
    system.wait_quiescent()
    address.tell("held")
    assert gate.entered.wait(10)
    assert not system.is_quiescent
    with pytest.raises(TimeoutError, match=r"/root/b \(1 message"):
        system.wait_quiescent(timeout=0.05)
    gate.opened.set()
    system.wait_quiescent()
    assert journal.items == ["held"]


def test_a_fresh_tree_is_quiescent_only_once_every_on_start_returned(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            children=(
                ChildSpec("a", worker("a", journal)),
                SupervisorSpec("sub", children=(ChildSpec("b", worker("b", journal)),)),
            ),
        )
    )
    system.wait_quiescent()
    assert sorted(journal.items) == [("start", "a", 1), ("start", "b", 1)]
    started = {e.path for e in events.items if e.kind is K.STARTED}
    assert started == {"/root", "/root/a", "/root/sub", "/root/sub/b"}


def test_runtime_membership_is_counted(system: ActorSystem, events: EventRecorder) -> None:
    journal = Journal()
    root = _root(system, events)
    address = add_child(root, ChildSpec("late", worker("late", journal)))
    address.tell("hello")
    system.wait_quiescent()
    assert journal.items == [("start", "late", 1), ("got", "late", 1, "hello")]


# -- I/O ----------------------------------------------------------------------------------


class Answer:
    def __init__(self, text: str) -> None:
        self.text = text


class Offload(Actor):
    """Hands each message to a thread of its own and handles the answer later."""

    threads: ClassVar[list[threading.Thread]] = []

    def __init__(self, journal: Journal, release: threading.Event) -> None:
        self.journal = journal
        self.release = release
        self.open: dict[str, Callable[[], None]] = {}

    def receive(self, message: Any) -> Any:
        if isinstance(message, Answer):
            done = self.open.pop(message.text, None)
            if done is not None:  # not an answer to an earlier incarnation
                self.journal(("answered", message.text))
                done()
            return None
        if message == "fail":
            raise RuntimeError("gone with work in flight")
        self.open[message] = self.context.begin_io(f"job {message}")
        me, release = self.context.self, self.release
        thread = threading.Thread(
            target=lambda: (release.wait(10), me.tell(Answer(message))), daemon=True
        )
        Offload.threads.append(thread)
        thread.start()
        return None


def test_io_in_flight_holds_quiescence_until_its_answer_is_handled(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    release = threading.Event()
    address = _one(system, events, ChildSpec("o", lambda: Offload(journal, release)))
    address.tell("x")
    address.ask("y")  # its handler returned; both jobs are out, on their threads
    assert not system.is_quiescent
    with pytest.raises(TimeoutError, match=r"I/O: /root/o: job x"):
        system.wait_quiescent(timeout=0.05)
    release.set()
    system.wait_quiescent()
    assert sorted(journal.items) == [("answered", "x"), ("answered", "y")]


def test_an_incarnation_that_ends_releases_its_io(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    release = threading.Event()
    address = _one(system, events, ChildSpec("o", lambda: Offload(journal, release)))
    address.tell("x")
    address.tell("fail")
    wait_running(system, events, "/root/o", generation=2)
    system.wait_quiescent()  # the answer never came, but nobody waits for it any more
    assert journal.items == []
    release.set()  # the late answer goes to the new incarnation, which ignores it
    for thread in Offload.threads:
        thread.join(10)
    system.wait_quiescent()
    assert journal.items == []


def test_stashed_messages_awaiting_a_restart_are_not_work(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()
    spec = ChildSpec("w", worker("w", journal), backoff=Backoff(5.0, 5.0, random_factor=0.0))
    address = _one(system, events, spec)
    address.tell(("fail", ConnectionError("down")))
    address.tell("while down")
    system.wait_quiescent()
    assert [e for e in events.items if is_event(K.RESTART_SCHEDULED, "/root/w")(e)]
    assert ("got", "w", 2, "while down") not in journal.items
    clock.advance(5.0)
    system.wait_quiescent()
    assert journal.items[-1] == ("got", "w", 2, "while down")


# -- the manual clock with a real loopback socket ---------------------------------------------


@contextmanager
def echo_server(hold: threading.Event) -> Iterator[tuple[str, int]]:
    """A loopback server answering each line with itself, once ``hold`` is set."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:
        with server:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as stream:
                for line in stream:
                    hold.wait(10)
                    stream.write(line)
                    stream.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[:2]
    finally:
        server.close()


class _Timeout:
    def __init__(self, request: str) -> None:
        self.request = request


class Requester(Actor):
    """Sends each request over a socket and gives up after 5 s of the system's clock,
    as a broker with a request timeout does."""

    def __init__(self, where: tuple[str, int], journal: Journal) -> None:
        self.where = where
        self.journal = journal
        self.pending: dict[str, tuple[Any, Callable[[], None]]] = {}

    def on_start(self) -> None:
        self.sock = socket.create_connection(self.where, timeout=10)
        me, stream = self.context.self, self.sock.makefile("rb")

        def read() -> None:
            with stream:
                for line in stream:
                    me.tell(Answer(line.decode().strip()))

        threading.Thread(target=read, daemon=True).start()

    def on_stop(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # the reader sees EOF and closes its stream
        self.sock.close()

    def receive(self, message: Any) -> Any:
        if isinstance(message, Answer) and message.text in self.pending:
            timer, done = self.pending.pop(message.text)
            timer.cancel()
            self.journal(("answered", message.text))
            done()
        elif isinstance(message, _Timeout) and message.request in self.pending:
            _, done = self.pending.pop(message.request)
            self.journal(("timed out", message.request))
            done()
        elif isinstance(message, str):
            timer = self.context.schedule_once(5.0, _Timeout(message))
            self.pending[message] = (timer, self.context.begin_io(f"request {message}"))
            self.sock.sendall(f"{message}\n".encode())


def test_manual_clock_with_a_loopback_socket_never_races_the_answer(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    """The clock jumps past the request timeout right after each request; waiting for
    quiescence first means the answer on the socket always wins, however the threads
    are scheduled, with no round trips counted."""
    journal = Journal()
    hold = threading.Event()
    hold.set()
    with echo_server(hold) as where:
        address = _one(system, events, ChildSpec("req", lambda: Requester(where, journal)))
        for n in range(30):
            address.ask(f"r{n}")  # handled: the request is on the wire, its timer armed
            system.wait_quiescent()
            clock.advance(10.0)
        system.wait_quiescent()
        assert journal.items == [("answered", f"r{n}") for n in range(30)]


def test_a_request_the_venue_holds_keeps_the_system_busy_until_the_clock_times_it_out(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()
    hold = threading.Event()
    with echo_server(hold) as where:
        address = _one(system, events, ChildSpec("req", lambda: Requester(where, journal)))
        address.tell("slow")
        address.ask("fast")  # both requests are on the wire
        assert not system.is_quiescent
        clock.advance(5.0)  # the timeout fires: the actor stops waiting
        system.wait_quiescent()
        assert sorted(journal.items) == [("timed out", "fast"), ("timed out", "slow")]
        hold.set()  # late answers: handled, ignored
        address.tell("after")
        system.wait_quiescent()
        assert ("answered", "after") in journal.items


def test_a_stress_of_relays_with_io_always_settles_exactly(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    release = threading.Event()
    release.set()
    address = _one(system, events, ChildSpec("o", lambda: Offload(journal, release)))
    rng = random.Random(3)
    sent = 0
    for _ in range(20):
        for _ in range(rng.randrange(1, 6)):
            address.tell(f"j{sent}")
            sent += 1
        system.wait_quiescent()
        assert len(journal.items) == sent
