"""What travels through a cell's inbox besides a bare user message.

A tell is queued as the user's message itself: nearly every message of every
order is a tell, and wrapping each one in an envelope only to unwrap it on
the other side costs an allocation and two attribute reads per message. What
the cell must tell apart from a user's message is therefore the small set of
items the runtime itself queues, recognised by their *exact* type
(``RUNTIME_ITEM_TYPES``): an ask (``Envelope``, which carries the future), a
timer that fired, a death-watch notice, and a supervisor's orders.

Three kinds of user message are still wrapped in an ``Envelope`` by
``Address.tell`` (``needs_envelope``), so they reach the behaviour as
themselves and are never acted on: an instance of one of the runtime's item
types (nothing outside the runtime makes them); an instance of pykka's own
envelope, which is how the cell's loop recognises what pykka itself queued
(``Address`` puts its items in the inbox without one); and any tuple,
because pykka's own messages (its stop, its proxy calls) are named tuples
that pykka's handling acts on, by ``isinstance``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

# pykka's envelope type, private to it: see ``ENVELOPED_TYPES``.
from pykka._envelope import Envelope as PykkaEnvelope

if TYPE_CHECKING:
    import pykka

    from ._address import Address

__all__ = [
    "ENVELOPED_TYPES",
    "RUNTIME_ITEM_TYPES",
    "USER_ITEM_TYPES",
    "Envelope",
    "Incarnate",
    "Stop",
    "Suspend",
    "TimerFired",
    "WatchNotice",
    "needs_envelope",
]


class Envelope:
    """A user message and, for an ask, the future its reply goes to."""

    __slots__ = ("message", "reply_to")

    def __init__(self, message: Any, reply_to: pykka.Future[Any] | None) -> None:
        self.message = message
        self.reply_to = reply_to


class TimerFired:
    """A timer of incarnation ``generation`` fired; ``message`` is for the behaviour."""

    __slots__ = ("generation", "message")

    def __init__(self, generation: int, message: Any) -> None:
        self.generation = generation
        self.message = message


class WatchNotice:
    """``target``, which this cell watches, has stopped for good."""

    __slots__ = ("target",)

    def __init__(self, target: Address) -> None:
        self.target = target


class Incarnate:
    """Supervisor to child: start incarnation number ``generation`` now.

    ``started`` is set once ``on_start`` has returned or failed, so the
    supervisor can start children one after another, in order, as OTP does.
    """

    __slots__ = ("generation", "started")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.started = threading.Event()


class Suspend:
    """Supervisor to child: end the current incarnation, keep the mailbox."""

    __slots__ = ()


class Stop:
    """Supervisor to child: stop for good."""

    __slots__ = ()


USER_ITEM_TYPES: Final[frozenset[type]] = frozenset({Envelope, TimerFired, WatchNotice})
"""Items that end in a behaviour's ``receive`` (stashed while it is suspended)."""

RUNTIME_ITEM_TYPES: Final[frozenset[type]] = USER_ITEM_TYPES | {Incarnate, Suspend, Stop}
"""Every item the runtime queues; anything else in an inbox is a bare tell."""


ENVELOPED_TYPES: Final[frozenset[type]] = RUNTIME_ITEM_TYPES | {PykkaEnvelope}
"""Exact types a user's tell must not travel bare as (tuples aside): the runtime's
items, and pykka's envelope, which the cell's loop takes for pykka's own item."""


def needs_envelope(message: object) -> bool:
    """Whether a tell of ``message`` must travel in an ``Envelope`` (see the module doc).

    ``Address.tell`` inlines this test; here it is named, for the reader and the tests.
    """
    return type(message) in ENVELOPED_TYPES or isinstance(message, tuple)
