"""Client order ids that every venue accepts and that never repeat.

Ids are ``f"{prefix}-{counter:x}"``: deterministic, so a replayed journal
produces the same ids, and short, so they fit the narrowest venue limit
(Binance's 36 characters of ``[.A-Z:/a-z0-9_-]``). Uniqueness across
restarts is the caller's job: either restore the counter from the journal
or put something unique to this run (a boot epoch) in the prefix, because a
venue that sees a reused id rejects the order or, worse, deduplicates it
against an old one.
"""

from __future__ import annotations

import re

from tradenode.messages._validation import CLIENT_ORDER_ID_PATTERN

__all__ = ["MAX_COUNTER", "MAX_PREFIX_LENGTH", "ClientOrderIds", "base36"]

#: The counter is bounded so the longest id is known when the prefix is
#: checked, rather than discovered as a venue rejection years later.
MAX_COUNTER = 2**64 - 1

_MAX_ID_LENGTH = 36
_SEPARATOR = "-"
_COUNTER_DIGITS = len(f"{MAX_COUNTER:x}")
MAX_PREFIX_LENGTH = _MAX_ID_LENGTH - len(_SEPARATOR) - _COUNTER_DIGITS
_HEX_COUNTER = re.compile(r"0|[1-9a-f][0-9a-f]*")


class ClientOrderIds:
    """Hands out ``prefix-<hex counter>`` ids, one per call to :meth:`next`."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self, prefix: str, start: int = 0) -> None:
        if not isinstance(prefix, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(prefix):
            raise ValueError(
                f"ClientOrderIds.prefix={prefix!r}: must be 1+ characters of [.A-Z:/a-z0-9_-]"
            )
        if len(prefix) > MAX_PREFIX_LENGTH:
            raise ValueError(
                f"ClientOrderIds.prefix={prefix!r}: at most {MAX_PREFIX_LENGTH} characters, "
                f"so that prefix, separator and a {_COUNTER_DIGITS}-digit counter fit in "
                f"{_MAX_ID_LENGTH}"
            )
        self._prefix = prefix
        self._counter = _checked_counter(start)

    @property
    def prefix(self) -> str:
        return self._prefix

    def next(self) -> str:
        if self._counter > MAX_COUNTER:
            raise OverflowError(f"ClientOrderIds({self._prefix!r}): counter exhausted")
        client_order_id = f"{self._prefix}{_SEPARATOR}{self._counter:x}"
        self._counter += 1
        return client_order_id

    def peek_counter(self) -> int:
        """The counter the next id will use; journal it to resume after a restart."""
        return self._counter

    def restore(self, counter: int) -> None:
        """Resume from a journaled counter.

        Moving backwards is refused: it would hand out ids the venues have
        already seen.
        """
        checked = _checked_counter(counter)
        if checked < self._counter:
            raise ValueError(
                f"ClientOrderIds.restore({counter}): below the current counter "
                f"{self._counter}; ids would repeat"
            )
        self._counter = checked

    def owns(self, client_order_id: str) -> bool:
        """Whether ``client_order_id`` has this generator's shape (orders placed by hand do not)."""
        head, separator, tail = client_order_id.rpartition(_SEPARATOR)
        return (
            head == self._prefix
            and separator == _SEPARATOR
            and _HEX_COUNTER.fullmatch(tail) is not None
            and int(tail, 16) <= MAX_COUNTER
        )

    def __repr__(self) -> str:
        return f"ClientOrderIds(prefix={self._prefix!r}, next_counter={self._counter})"


def _checked_counter(counter: int) -> int:
    if isinstance(counter, bool) or not isinstance(counter, int):
        raise ValueError(f"ClientOrderIds: counter {counter!r} must be an int")
    if not 0 <= counter <= MAX_COUNTER + 1:
        raise ValueError(f"ClientOrderIds: counter {counter} must be within [0, 2**64]")
    return counter


def base36(value: int) -> str:
    """A non-negative integer in lowercase base 36: the densest venue-safe digits."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while value:
        value, digit = divmod(value, 36)
        text = digits[digit] + text
    return text or "0"
