"""When the journal calls fsync: the price of durability, chosen per node.

``EVERY_RECORD``
    ``append`` returns only after its record is fsynced. Nothing returned is
    ever lost, and every record costs one fsync (concurrent appenders share
    one when they overlap).
``GROUP``
    Group commit: ``append`` only queues the record in memory and returns;
    callers that must not act before their record is durable wait for the
    journal's durability listener instead of blocking the append. A crash
    of the process loses the records not yet committed, as a power loss
    would: records nobody may have acted on yet.

    Without an interval (``group``, the default: ``interval_ms`` 0) it is
    leader/follower group commit: when no fsync is in flight the journal's
    commit thread writes and fsyncs the record at once, so a lone record
    pays one fsync and no wait; records that arrive while an fsync is in
    flight are written and fsynced together, in one write and one fsync, as
    soon as it returns. A burst shares fsyncs, however fast or slow the
    disk, and nothing waits for a clock. A record appended as not urgent
    (``append(..., urgent=False)``: nobody waits for it) starts no fsync of
    its own: it shares the next urgent record's (or ``urge``'s), or is
    committed 2 ms later, so it never holds up one that somebody waits for.

    ``interval_ms`` (``group:2ms``) is an optional extra wait, for disks
    where an fsync costs so much that fewer of them are worth a delay: a
    timer writes and fsyncs the group ``interval_ms`` after its oldest
    record, or as soon as ``max_records`` are waiting, whichever comes
    first. When the timer's thread falls behind (starved of the GIL on a
    busy node, or behind a slow disk), the appender commits the group
    itself once its oldest record has waited four intervals.

    ``max_records`` bounds the queue either way (backpressure): once four
    times ``max_records`` records wait (behind a stalled disk), the
    appender writes and fsyncs them itself, waiting for the disk.
``NONE``
    Never fsync on its own: records reach the kernel before ``append``
    returns (so they survive a crash of the process) and the OS writes them
    back when it likes (so a power loss can lose the latest ones). An
    explicit ``flush`` still fsyncs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import ClassVar

from .._exceptions import ConfigError

__all__ = ["FsyncMode", "FsyncPolicy"]


class FsyncMode(enum.Enum):
    EVERY_RECORD = "every_record"
    GROUP = "group"
    NONE = "none"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s)?\s*$")
_UNIT_MS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """How often the journal fsyncs; see the module docstring.

    Use the constants ``FsyncPolicy.EVERY_RECORD``, ``FsyncPolicy.NONE``,
    ``FsyncPolicy.GROUP`` (leader/follower, no extra wait, 256 records),
    ``FsyncPolicy.group(...)``,
    or parse a config string with ``FsyncPolicy.parse``. ``str(policy)``
    gives the string ``parse`` reads back.
    """

    mode: FsyncMode
    interval_ms: float = 0.0
    """GROUP: the extra wait before a group is committed; 0 commits at once when idle."""
    max_records: int = 256
    """GROUP: a group's size that commits it at once (with an interval), and a
    quarter of the queue that makes appenders wait for the disk."""

    EVERY_RECORD: ClassVar[FsyncPolicy]
    GROUP: ClassVar[FsyncPolicy]
    NONE: ClassVar[FsyncPolicy]

    def __post_init__(self) -> None:
        if not isinstance(self.mode, FsyncMode):
            raise TypeError(f"mode must be a FsyncMode, not {self.mode!r}")
        if self.mode is FsyncMode.GROUP:
            if not self.interval_ms >= 0:
                raise ValueError(f"group commit interval must be >= 0 ms, not {self.interval_ms}")
            if isinstance(self.max_records, bool) or self.max_records < 1:
                raise ValueError(f"group commit max_records must be >= 1, not {self.max_records}")

    @classmethod
    def group(cls, interval_ms: float = 0.0, max_records: int = 256) -> FsyncPolicy:
        """Group commit: at once when no fsync is in flight (``interval_ms`` 0), else
        ``interval_ms`` after the oldest unsynced record or at ``max_records``."""
        return cls(FsyncMode.GROUP, float(interval_ms), int(max_records))

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        """Read ``every_record``, ``none``, ``group``, ``group:5ms`` or ``group:5ms:256``.

        ``group`` is leader/follower group commit with no extra wait
        (``group:0ms:256``); an interval adds that wait. The interval takes
        ``us``, ``ms`` (the default unit) or ``s``.
        Raises ``ConfigError`` (a ``ValueError``) naming what is wrong.
        """
        if not isinstance(text, str):
            raise ConfigError(f"fsync policy must be a string, not {text!r}", key="fsync")
        parts = [part.strip() for part in text.strip().lower().split(":")]
        name, args = parts[0].replace("-", "_"), parts[1:]
        if name in {"every_record", "none"} and not args:
            return cls.EVERY_RECORD if name == "every_record" else cls.NONE
        if name == "group" and len(args) <= 2:
            interval_ms, max_records = 0.0, 256
            if args:
                match = _DURATION.match(args[0])
                if match is None:
                    raise ConfigError(
                        f"fsync policy {text!r}: interval {args[0]!r} is not a duration "
                        "such as 5ms, 500us or 0.01s",
                        key="fsync",
                    )
                interval_ms = float(match.group(1)) * _UNIT_MS[match.group(2)]
            if len(args) == 2:
                if not args[1].isdigit():
                    raise ConfigError(
                        f"fsync policy {text!r}: max records {args[1]!r} is not a whole number",
                        key="fsync",
                    )
                max_records = int(args[1])
            try:
                return cls.group(interval_ms, max_records)
            except ValueError as exc:
                raise ConfigError(f"fsync policy {text!r}: {exc}", key="fsync") from exc
        raise ConfigError(
            f"fsync policy {text!r} is not one of every_record, none, group, "
            "group:<interval> or group:<interval>:<max records> (e.g. group:5ms:256)",
            key="fsync",
        )

    def __str__(self) -> str:
        if self.mode is FsyncMode.GROUP:
            return f"group:{self.interval_ms:g}ms:{self.max_records}"
        return str(self.mode.value)


FsyncPolicy.EVERY_RECORD = FsyncPolicy(FsyncMode.EVERY_RECORD)
FsyncPolicy.GROUP = FsyncPolicy(FsyncMode.GROUP)
FsyncPolicy.NONE = FsyncPolicy(FsyncMode.NONE)
