"""What a venue can do, declared by its adapter and consulted by the core.

The core never assumes a venue feature: the OMS modifies by native amend
or by cancel/replace as the venue declares, the kill switch cancels with
one request per symbol (or per account) where the venue has a cancel-all,
and flattens with reduce-only orders only where the venue honours them (a
spot venue has no positions to reduce: Binance Spot refuses the flag, so a
flatten there is a plain opposite-side order no larger than what the venue
holds). The breaker's exactly-once rule needs the venue's acceptance window.
The risk guard refuses, before anything is sent, an order whose type, time
in force, post-only flag or fractional quantity the venue does not declare
(``DenialCode.UNSUPPORTED_BY_VENUE``), an iceberg's display quantity
where the venue has no native iceberg, and strategies draw client order ids
that fit the venue's ``ClientIdRules``.
"""

from __future__ import annotations

import enum
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..messages._enums import OrderType, TimeInForce
from ._contract import AcceptanceWindow

__all__ = [
    "CORE_CLIENT_ID_CHARACTERS",
    "CORE_CLIENT_ID_LENGTH",
    "AmendMode",
    "CancelAllScope",
    "ClientIdRules",
    "MarketDataKind",
    "VenueCapabilities",
]

#: What every client order id must be anyway, whatever the venue: the
#: message layer's ``CLIENT_ORDER_ID_PATTERN`` (``^[.A-Z:/a-z0-9_-]{1,36}$``).
CORE_CLIENT_ID_CHARACTERS = "".join(sorted(string.ascii_letters + string.digits + ".:/_-"))
CORE_CLIENT_ID_LENGTH = 36

_E = TypeVar("_E", bound=enum.Enum)


class AmendMode(enum.Enum):
    NATIVE = "native"
    """The venue changes an order in place; it keeps its client order id."""
    CANCEL_REPLACE = "cancel_replace"
    """A modify is a cancel plus a new order under a new client order id."""
    NATIVE_WHERE_DECLARED = "native_where_declared"
    """Native for the order types and times in force the venue edits in place
    (``VenueCapabilities.native_amend_order_types`` / ``native_amend_time_in_force``),
    cancel/replace for every other order (Coinbase edits only GTC limits)."""


class CancelAllScope(enum.Enum):
    SYMBOL = "symbol"
    """One request cancels every open order of one symbol (Binance)."""
    ACCOUNT = "account"
    """One request cancels every open order of the account."""
    NONE = "none"
    """Orders are cancelled one by one."""


class MarketDataKind(enum.Enum):
    """What market data a venue connection can deliver to the node."""

    QUOTES = "quotes"
    """Best bid/ask (and last price) as ``Quote`` messages."""
    TRADES = "trades"
    """The public tape, trade by trade."""
    DEPTH = "depth"
    """Order book levels beyond the top."""
    BARS = "bars"
    """Candles (OHLCV) per interval."""


@dataclass(frozen=True, slots=True)
class ClientIdRules:
    """Which client order ids a venue accepts: at most ``max_length`` characters,
    each one of ``characters``.

    Ids must also be valid messages, so ``characters`` must be a subset of
    ``CORE_CLIENT_ID_CHARACTERS`` and ids are never longer than 36 however
    long the venue allows (``effective_length``). The ten digits must be
    allowed: every id ends in a counter. ``characters`` is stored sorted and
    without repeats, so two declarations of the same rule compare equal.
    The default is the core's own rule.
    """

    max_length: int = CORE_CLIENT_ID_LENGTH
    characters: str = CORE_CLIENT_ID_CHARACTERS

    def __post_init__(self) -> None:
        length = self.max_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"ClientIdRules.max_length={length!r}: must be an int >= 1")
        chars = self.characters
        if not isinstance(chars, str) or not chars:
            raise ValueError(f"ClientIdRules.characters={chars!r}: must be a non-empty str")
        foreign = sorted(set(chars) - set(CORE_CLIENT_ID_CHARACTERS))
        if foreign:
            raise ValueError(
                f"ClientIdRules.characters={chars!r}: {''.join(foreign)!r} cannot appear in "
                f"a client order id (the core allows only [.A-Z:/a-z0-9_-])"
            )
        if not set(string.digits) <= set(chars):
            raise ValueError(f"ClientIdRules.characters={chars!r}: must allow the digits 0-9")
        object.__setattr__(self, "characters", "".join(sorted(set(chars))))

    @classmethod
    def alphanumeric(cls, max_length: int) -> ClientIdRules:
        """Letters and digits only (OKX: 32)."""
        return cls(max_length, string.ascii_letters + string.digits)

    @property
    def effective_length(self) -> int:
        """The longest id both the venue and the core accept."""
        return min(self.max_length, CORE_CLIENT_ID_LENGTH)

    @property
    def pattern(self) -> re.Pattern[str]:
        """The rule as a regular expression, for logs and adapters' own checks."""
        return re.compile(f"^[{_character_class(self.characters)}]{{1,{self.max_length}}}$")

    def allows(self, client_order_id: str) -> bool:
        """Whether the venue accepts ``client_order_id``."""
        return (
            isinstance(client_order_id, str)
            and 1 <= len(client_order_id) <= self.max_length
            and set(client_order_id) <= set(self.characters)
        )

    def allows_characters(self, characters: Iterable[str]) -> bool:
        return set(characters) <= set(self.characters)

    def __str__(self) -> str:
        return self.pattern.pattern


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    """The features of one venue connection the core consults.

    The defaults are what the core assumed before venues declared anything,
    so an entry built without capabilities behaves as it always did: every
    order type and time in force, post-only and fractional quantities pass
    the risk guard (the venue itself is the judge), ids follow the core's
    rule. Where nothing used to be assumed, the default is the conservative
    answer: no batches, quotes only. An adapter declares what it can
    actually express (see ``binance_capabilities``, ``paper_capabilities``).
    """

    amend: AmendMode = AmendMode.NATIVE
    native_amend_order_types: frozenset[OrderType] = frozenset(OrderType)
    """With ``AmendMode.NATIVE_WHERE_DECLARED``: the order types amended in place."""
    native_amend_time_in_force: frozenset[TimeInForce] = frozenset(TimeInForce)
    """With ``AmendMode.NATIVE_WHERE_DECLARED``: the times in force amended in place."""
    reduce_only: bool = False
    """Whether the venue honours reduce-only orders (refusing what would grow a position)."""
    cancel_all: CancelAllScope = CancelAllScope.NONE
    positions_are_balances: bool = False
    """Spot: a position is what the account holds of the base asset, and selling
    needs it held; a flatten order is sized to what the venue's account shows."""
    acceptance: AcceptanceWindow | None = None
    """When the venue can no longer accept a request (see ``AcceptanceWindow``);
    None: never known, so an order of unknown outcome is never re-sent blindly."""
    order_types: frozenset[OrderType] = frozenset(OrderType)
    """The order types the adapter can send; others are denied before the venue."""
    time_in_force: frozenset[TimeInForce] = frozenset(TimeInForce)
    """The times in force the adapter can send; others are denied before the venue."""
    post_only: bool = True
    """Whether a LIMIT order can be post-only (maker only)."""
    batch_submit: int = 0
    """The most orders one request can place; 0: one order per request."""
    batch_cancel: int = 0
    """The most orders one request can cancel by id; 0: one cancel per request
    (a cancel-all is ``cancel_all``, not a batch)."""
    client_ids: ClientIdRules = field(default_factory=ClientIdRules)
    """Which client order ids the venue accepts; ids are generated to fit."""
    fractional_quantity: bool = True
    """Whether a quantity may have a fractional part (crypto: yes; most stock
    venues: whole shares only)."""
    market_data: frozenset[MarketDataKind] = frozenset({MarketDataKind.QUOTES})
    """The market data the adapter delivers."""
    native_iceberg: bool = False
    """Whether a LIMIT order can carry a display quantity the venue itself shows
    and refreshes (Binance ``icebergQty``); elsewhere an order with a
    ``display_quantity`` is denied and the Iceberg algorithm emulates."""

    def __post_init__(self) -> None:
        _set_of(self, "order_types", OrderType)
        _set_of(self, "time_in_force", TimeInForce)
        _set_of(self, "native_amend_order_types", OrderType)
        _set_of(self, "native_amend_time_in_force", TimeInForce)
        _set_of(self, "market_data", MarketDataKind)
        for name in (
            "reduce_only",
            "positions_are_balances",
            "post_only",
            "fractional_quantity",
            "native_iceberg",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"VenueCapabilities.{name}={getattr(self, name)!r}: must be a bool"
                )
        for name in ("batch_submit", "batch_cancel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"VenueCapabilities.{name}={value!r}: must be an int >= 0")
        if not isinstance(self.client_ids, ClientIdRules):
            raise ValueError(
                f"VenueCapabilities.client_ids={self.client_ids!r}: must be ClientIdRules"
            )

    def amends_natively(self, order_type: OrderType, time_in_force: TimeInForce) -> bool:
        """Whether a modify of such an order keeps its id (native amend) rather than
        replacing it with a new order under a new id (cancel/replace)."""
        if self.amend is AmendMode.NATIVE_WHERE_DECLARED:
            return (
                order_type in self.native_amend_order_types
                and time_in_force in self.native_amend_time_in_force
            )
        return self.amend is AmendMode.NATIVE


def _character_class(characters: str) -> str:
    """Sorted characters as a regex class body, runs of 3+ digits or letters as
    ranges: ``\\-0-9A-Z_a-z``."""
    runs: list[list[str]] = []
    for char in characters:
        if runs and ord(char) == ord(runs[-1][-1]) + 1 and _kind(char) == _kind(runs[-1][-1]):
            runs[-1].append(char)
        else:
            runs.append([char])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{re.escape(run[0])}-{re.escape(run[-1])}")
        else:
            parts.extend(re.escape(char) for char in run)
    return "".join(parts)


def _kind(char: str) -> int:
    for kind, chars in enumerate((string.digits, string.ascii_uppercase, string.ascii_lowercase)):
        if char in chars:
            return kind
    return -1 - ord(char)  # punctuation: never part of a range


def _set_of(owner: VenueCapabilities, name: str, kind: type[_E]) -> None:
    """Store any iterable of ``kind`` members as a frozenset, so sets compare and hash."""
    value: Any = getattr(owner, name)
    try:
        members = frozenset(value)
    except TypeError:
        raise ValueError(
            f"VenueCapabilities.{name}={value!r}: must be a set of {kind.__name__}"
        ) from None
    if not all(isinstance(member, kind) for member in members):
        raise ValueError(f"VenueCapabilities.{name}={value!r}: must be a set of {kind.__name__}")
    object.__setattr__(owner, name, members)
