"""Client order ids that fit the venue's rules and never repeat.

By default ids are ``f"{prefix}-{counter:x}"``: deterministic, so a replayed
journal produces the same ids, and short, so they fit Binance's 36
characters of ``[A-Za-z0-9_-]`` and the core's ``[.A-Z:/a-z0-9_-]``.

A venue whose ``ClientIdRules`` cannot take that shape (no ``-``, fewer
characters, a prefix character it refuses) gets the *compact* shape from a
generator built with ``rules=``: a fixed-length tag, then the counter in
the rule's letters and digits (``0-9``, then ``a-z``, then ``A-Z``, as
allowed), no separator. The tag is a digest of the prefix and the rule, so
it is deterministic, and its fixed length makes the ids of one generator
distinct from every other generator's whose tag differs. Two prefixes
getting the same tag is possible (one in 36**8 or more per pair for rules
of 16+ characters) where two distinct separated prefixes never collide;
that is the price of a narrow venue.

Uniqueness across restarts is the caller's job: either restore the counter
from the journal or put something unique to this run (a boot epoch) in the
prefix, because a venue that sees a reused id rejects the order or, worse,
deduplicates it against an old one. ``ClientOrderIdFamily`` holds one
prefix's generators so that every venue of the same shape shares one
counter.
"""

from __future__ import annotations

import hashlib
import re
import string

from tradenode.messages._validation import CLIENT_ORDER_ID_PATTERN

from ._capabilities import ClientIdRules

__all__ = [
    "COMPACT_MIN_LENGTH",
    "MAX_COUNTER",
    "MAX_PREFIX_LENGTH",
    "ClientOrderIdFamily",
    "ClientOrderIds",
    "base36",
]

#: The counter is bounded so the longest id is known when the prefix is
#: checked, rather than discovered as a venue rejection years later.
MAX_COUNTER = 2**64 - 1

_MAX_ID_LENGTH = 36
_SEPARATOR = "-"
_COUNTER_DIGITS = len(f"{MAX_COUNTER:x}")
MAX_PREFIX_LENGTH = _MAX_ID_LENGTH - len(_SEPARATOR) - _COUNTER_DIGITS
_HEX_COUNTER = re.compile(r"0|[1-9a-f][0-9a-f]*")
_HEX_DIGITS = frozenset("0123456789abcdef")

#: The narrowest rule the compact shape serves: 4 tag characters and 4 counter digits.
COMPACT_MIN_LENGTH = 8
_MAX_TAG_LENGTH = 12
_DIGIT_ORDER = string.digits + string.ascii_lowercase + string.ascii_uppercase


class ClientOrderIds:
    """Hands out one id per call to :meth:`next`: ``prefix-<hex counter>``, or the
    compact ``<tag><counter>`` when ``rules`` cannot take that shape.

    Without ``rules`` the prefix must leave room for the separator and a
    16-digit counter in 36 characters (``MAX_PREFIX_LENGTH``). With ``rules``
    the separated shape is kept whenever every id it can produce fits them,
    byte for byte the same ids as without; otherwise the shape is compact.
    """

    __slots__ = ("_alphabet", "_counter", "_max_counter", "_prefix", "_rules", "_tag")

    def __init__(self, prefix: str, start: int = 0, *, rules: ClientIdRules | None = None) -> None:
        if not isinstance(prefix, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(prefix):
            raise ValueError(
                f"ClientOrderIds.prefix={prefix!r}: must be 1+ characters of [.A-Z:/a-z0-9_-]"
            )
        if rules is not None and not isinstance(rules, ClientIdRules):
            raise ValueError(f"ClientOrderIds.rules={rules!r}: must be ClientIdRules or None")
        self._prefix = prefix
        self._rules: ClientIdRules | None = None
        self._tag = ""
        self._alphabet = ""
        self._max_counter = MAX_COUNTER
        if rules is None or _separated_fits(prefix, rules):
            if len(prefix) > MAX_PREFIX_LENGTH:
                raise ValueError(
                    f"ClientOrderIds.prefix={prefix!r}: at most {MAX_PREFIX_LENGTH} characters, "
                    f"so that prefix, separator and a {_COUNTER_DIGITS}-digit counter fit in "
                    f"{_MAX_ID_LENGTH}"
                )
        else:
            self._compact(prefix, rules)
        self._counter = self._checked_counter(start)

    def _compact(self, prefix: str, rules: ClientIdRules) -> None:
        length = rules.effective_length
        if length < COMPACT_MIN_LENGTH:
            raise ValueError(
                f"ClientOrderIds.rules={rules}: ids of at most {length} characters are too "
                f"short to be unique (at least {COMPACT_MIN_LENGTH})"
            )
        alphabet = _compact_shape(rules)[1]
        tag_length = min(_MAX_TAG_LENGTH, length // 2)
        base = len(alphabet)
        self._rules = rules
        self._alphabet = alphabet
        self._max_counter = min(MAX_COUNTER, base ** (length - tag_length) - 1)
        seed = f"{prefix}\x00{length}\x00{alphabet}".encode()
        digest = int.from_bytes(hashlib.blake2b(seed, digest_size=16).digest(), "big")
        self._tag = _encode(digest % base**tag_length, alphabet).rjust(tag_length, alphabet[0])

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def rules(self) -> ClientIdRules | None:
        """The rule the compact shape was made for; None for the separated shape."""
        return self._rules

    @property
    def compact(self) -> bool:
        return self._rules is not None

    @property
    def tag(self) -> str:
        """What every id starts with: ``prefix-`` or the compact tag."""
        return self._tag if self._rules is not None else f"{self._prefix}{_SEPARATOR}"

    @property
    def max_counter(self) -> int:
        """The last counter this generator can use."""
        return self._max_counter

    def next(self) -> str:
        if self._counter > self._max_counter:
            raise OverflowError(f"ClientOrderIds({self._prefix!r}): counter exhausted")
        client_order_id = self._format(self._counter)
        self._counter += 1
        return client_order_id

    def _format(self, counter: int) -> str:
        if self._rules is None:
            return f"{self._prefix}{_SEPARATOR}{counter:x}"
        return f"{self._tag}{_encode(counter, self._alphabet)}"

    def peek_counter(self) -> int:
        """The counter the next id will use; journal it to resume after a restart."""
        return self._counter

    def restore(self, counter: int) -> None:
        """Resume from a journaled counter.

        Moving backwards is refused: it would hand out ids the venues have
        already seen.
        """
        checked = self._checked_counter(counter)
        if checked < self._counter:
            raise ValueError(
                f"ClientOrderIds.restore({counter}): below the current counter "
                f"{self._counter}; ids would repeat"
            )
        self._counter = checked

    def owns(self, client_order_id: str) -> bool:
        """Whether ``client_order_id`` has this generator's shape (orders placed by hand do not)."""
        if self._rules is None:
            head, separator, tail = client_order_id.rpartition(_SEPARATOR)
            return (
                head == self._prefix
                and separator == _SEPARATOR
                and _HEX_COUNTER.fullmatch(tail) is not None
                and int(tail, 16) <= MAX_COUNTER
            )
        tag = self._tag
        tail = client_order_id[len(tag) :]
        if not client_order_id.startswith(tag) or not tail or not set(tail) <= set(self._alphabet):
            return False
        if len(tail) > 1 and tail[0] == self._alphabet[0]:
            return False  # not how the counter is written: a leading zero
        return _decode(tail, self._alphabet) <= self._max_counter

    def fits(self, rules: ClientIdRules) -> bool:
        """Whether every id this generator can produce is one ``rules`` allow."""
        longest = self._format(self._max_counter)
        if self._rules is None:
            characters = {*self._prefix, _SEPARATOR, *_HEX_DIGITS}
        else:
            characters = {*self._tag, *self._alphabet}
        return len(longest) <= rules.max_length and rules.allows_characters(characters)

    def _checked_counter(self, counter: int) -> int:
        if isinstance(counter, bool) or not isinstance(counter, int):
            raise ValueError(f"ClientOrderIds: counter {counter!r} must be an int")
        if not 0 <= counter <= self._max_counter + 1:
            bound = "2**64" if self._max_counter == MAX_COUNTER else str(self._max_counter + 1)
            raise ValueError(f"ClientOrderIds: counter {counter} must be within [0, {bound}]")
        return counter

    def __repr__(self) -> str:
        if self._rules is None:
            return f"ClientOrderIds(prefix={self._prefix!r}, next_counter={self._counter})"
        return (
            f"ClientOrderIds(prefix={self._prefix!r}, rules={self._rules}, tag={self._tag!r}, "
            f"next_counter={self._counter})"
        )


class ClientOrderIdFamily:
    """One prefix's generators, one per id shape the venues need.

    Every venue whose rules take the separated shape shares the default
    generator (one counter, so ids never repeat across those venues);
    each narrower rule gets its own compact generator, created on first
    use. Deterministic: the same prefix and the same sequence of calls give
    the same ids.
    """

    __slots__ = ("_compact", "_default")

    def __init__(self, prefix: str, start: int = 0) -> None:
        self._default = ClientOrderIds(prefix, start)
        self._compact: dict[tuple[int, str], ClientOrderIds] = {}

    @property
    def prefix(self) -> str:
        return self._default.prefix

    @property
    def default(self) -> ClientOrderIds:
        """The separated-shape generator (the one used without rules)."""
        return self._default

    def for_rules(self, rules: ClientIdRules | None) -> ClientOrderIds:
        """The generator whose ids fit ``rules`` (None: the core's own rule)."""
        if rules is None or self._default.fits(rules):
            return self._default
        # Keyed by shape, not by rule: two rules that make the same tag and
        # digits must share one counter.
        shape = _compact_shape(rules)
        generator = self._compact.get(shape)
        if generator is None:
            generator = ClientOrderIds(self._default.prefix, rules=rules)
            self._compact[shape] = generator
        return generator

    def next(self, rules: ClientIdRules | None = None) -> str:
        """The next id that fits ``rules``."""
        return self.for_rules(rules).next()

    def generators(self) -> tuple[ClientOrderIds, ...]:
        """The default generator, then each compact one in order of first use."""
        return (self._default, *self._compact.values())

    def owns(self, client_order_id: str) -> bool:
        return any(generator.owns(client_order_id) for generator in self.generators())

    def __repr__(self) -> str:
        return f"ClientOrderIdFamily({', '.join(map(repr, self.generators()))})"


def _separated_fits(prefix: str, rules: ClientIdRules) -> bool:
    longest = len(prefix) + len(_SEPARATOR) + _COUNTER_DIGITS
    return longest <= rules.effective_length and rules.allows_characters(
        {*prefix, _SEPARATOR, *_HEX_DIGITS}
    )


def _compact_shape(rules: ClientIdRules) -> tuple[int, str]:
    """What decides a compact generator's ids: the length it fills and its digits."""
    return rules.effective_length, "".join(c for c in _DIGIT_ORDER if c in rules.characters)


def _encode(value: int, alphabet: str) -> str:
    base = len(alphabet)
    text = ""
    while value:
        value, digit = divmod(value, base)
        text = alphabet[digit] + text
    return text or alphabet[0]


def _decode(text: str, alphabet: str) -> int:
    base = len(alphabet)
    value = 0
    for char in text:
        value = value * base + alphabet.index(char)
    return value


def base36(value: int) -> str:
    """A non-negative integer in lowercase base 36: the densest venue-safe digits."""
    return _encode(value, _DIGIT_ORDER[:36])
