"""The price and size increments a venue's broker learned, as its status publishes them.

Each adapter learns its instruments' rules from the venue (Binance filters,
OKX instruments, OANDA's display precision, IBKR contract details, ccxt's
market precision, Coinbase products, Alpaca assets); the operator's views
(``tradenode run``'s terminal view, the dashboard) round prices and
quantities to them. The contract is one key of the venue's status
(``VenueBuild.status``, shown as ``Node.status()["connections"][venue]``)::

    "instruments": {symbol: {"price_increment": "0.01", "size_increment": "0.00001"}}

each increment a plain decimal string, present only where the venue states
one. :class:`LearnedIncrements` is how a factory fills it without touching
its broker's code: it wraps the broker's constructor, remembers the latest
incarnation, reads that incarnation's rules when the status is asked, and
keeps what it read, so a restarting broker (rules not loaded yet, or a venue
that is down) still shows the last known increments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Generic, TypeVar

__all__ = [
    "INSTRUMENTS_KEY",
    "Increments",
    "LearnedIncrements",
    "increments_entry",
    "places_increment",
]

logger = logging.getLogger("tradenode.brokers")

INSTRUMENTS_KEY = "instruments"
"""The key of a venue's status that holds its instruments' increments."""

Increments = tuple[str, Decimal | None, Decimal | None]
"""(symbol, price increment, size increment) as an adapter reads them; None: unstated."""

B = TypeVar("B")


def _plain(step: Decimal | None) -> str | None:
    if step is None or not step.is_finite() or step <= 0:
        return None
    return format(step.normalize(), "f")


def increments_entry(price: Decimal | None, size: Decimal | None) -> dict[str, str]:
    """One symbol's entry: positive increments as plain decimal strings, others left out."""
    entry: dict[str, str] = {}
    for key, step in (("price_increment", price), ("size_increment", size)):
        text = _plain(step)
        if text is not None:
            entry[key] = text
    return entry


def places_increment(places: int) -> Decimal:
    """The increment of a figure with ``places`` decimals (2 -> 0.01, 0 -> 1)."""
    return Decimal(1).scaleb(-places)


class LearnedIncrements(Generic[B]):
    """The increments of the latest broker incarnation a factory built, kept across them.

    ``read`` gets a broker and yields (symbol, price increment, size
    increment); it runs on the thread that asks the status, so it only reads
    the broker's attributes (an exception there is logged, never raised).
    """

    def __init__(self, read: Callable[[B], Iterable[Increments]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._latest: B | None = None
        self._known: dict[str, dict[str, str]] = {}

    def watch(self, make: Callable[[], B]) -> Callable[[], B]:
        """``make`` (the broker's constructor for its child spec), remembering what it built."""

        def built() -> B:
            broker = make()
            self._latest = broker
            return broker

        return built

    def status(self) -> dict[str, dict[str, str]]:
        """What the ``instruments`` key of the venue's status holds now."""
        broker = self._latest
        learned: list[tuple[str, dict[str, str]]] = []
        if broker is not None:
            try:
                learned = [
                    (symbol, entry)
                    for symbol, price, size in self._read(broker)
                    if (entry := increments_entry(price, size))
                ]
            except Exception:  # a status never raises: keep what was known
                logger.exception("instrument increments could not be read")
        with self._lock:
            self._known.update(learned)
            return {symbol: dict(entry) for symbol, entry in sorted(self._known.items())}
